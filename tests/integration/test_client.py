"""``fakeai.client.FakeAI`` and the pytest plugin, used the way a user's test suite would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from fakeai.client import FakeAI

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MSGS = [{"role": "user", "content": "Say something."}]


def test_thread_server_serves_and_stops():
    with FakeAI(ttft_ms=0, itl_ms=0) as fake:
        reply = fake.openai.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=7,
                                                    extra_body={"ignore_eos": True})
        assert reply.usage.completion_tokens == 7
        assert fake.http.get("/health").status_code == 200
        url = fake.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)


def test_process_server_gets_its_settings_as_flags():
    with FakeAI(mode="process", ttft_ms=150, itl_ms=0, max_num_seqs=3) as fake:
        start = time.monotonic()
        fake.openai.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=3)
        assert time.monotonic() - start >= 0.15
        assert f"serving on {fake.base_url}" in fake.logs()


def test_async_context_manager_and_client():
    async def go():
        async with FakeAI(ttft_ms=0, itl_ms=0) as fake:
            reply = await fake.async_openai.chat.completions.create(model="gpt-4o-mini", messages=MSGS,
                                                                    max_tokens=4)
            return reply.usage.completion_tokens

    assert 1 <= asyncio.run(go()) <= 4


def test_bad_settings_are_refused_before_starting():
    with pytest.raises(ValueError):
        FakeAI(ttft_ms=-1)
    with pytest.raises(ValueError):
        FakeAI(mode="docker")


def _pytest(tmp_path, source: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py", *args],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)


def test_plugin_runs_the_readme_example(tmp_path):
    example = open(os.path.join(ROOT, "examples", "test_with_fakeai.py")).read()
    out = _pytest(tmp_path, example)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout


def test_plugin_failures_are_reported(tmp_path):
    out = _pytest(tmp_path, """
        def test_wrong(fakeai):
            r = fakeai.openai.chat.completions.create(model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}], max_tokens=3)
            assert r.usage.completion_tokens > 3
        """)
    assert out.returncode == 1 and "1 failed" in out.stdout


def test_plugin_setting_option_reaches_the_shared_server(tmp_path):
    out = _pytest(tmp_path, """
        import time

        def test_ttft(fakeai):
            t = time.monotonic()
            fakeai.openai.chat.completions.create(model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}], max_tokens=2)
            assert time.monotonic() - t >= 0.2
        """, "--fakeai-setting", "ttft_ms=200")
    assert out.returncode == 0, out.stdout + out.stderr
