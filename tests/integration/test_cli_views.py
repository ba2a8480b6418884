"""``fakeai status``, ``fakeai metrics`` (once, --watch, --replay) and ``fakeai cache-stats`` against a
real server, and the metrics history file they replay."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import httpx
import openai
import pytest

from fakeai.cli import main
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
KEY = "sk-cli-views-0123456789abcdef"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    history = tmp_path_factory.mktemp("history") / "metrics.jsonl"
    with run_server("--ttft", "0", "--itl", "0", "--api-key", KEY, "--metrics-history-file", str(history),
                    "--metrics-history-interval-s", "0.1") as s:
        s.history = history
        c = openai.OpenAI(base_url=s.api_url, api_key=KEY, max_retries=0)
        for i in range(4):
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"cli {i}"}], max_tokens=6)
        yield s


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for k in os.environ:
        if k.startswith(("FAKEAI_", "OPENAI_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def fakeai(*args: str, env: dict | None = None):
    """``fakeai ARGS`` in this process (the real parser and commands): returncode, stdout, stderr."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_status(srv):
    # the installed entry point, once, as a user runs it (a /v1 base URL works too)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKEAI_")}
    r = subprocess.run([sys.executable, "-m", "fakeai", "status", "--base-url", srv.api_url, "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] == "healthy" and d["metrics"]["history"]["file"] == str(srv.history)
    r = fakeai("status", env={"FAKEAI_BASE_URL": srv.base_url})
    assert r.returncode == 0, r.stderr
    assert "healthy" in r.stdout and "H100-80GB" in r.stdout and MODEL in r.stdout


def test_metrics_once(srv):
    r = fakeai("metrics", "--base-url", srv.base_url, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["object"] == "metrics" and d["models"][MODEL]["requests"]["completed"] >= 4
    r = fakeai("metrics", "--base-url", srv.base_url)
    assert r.returncode == 0, r.stderr
    for text in ("requests/s", "TTFT", "ITL", "models", MODEL, "workers (router: kv)", "GPU util"):
        assert text in r.stdout, text


def test_metrics_watch(srv):
    r = fakeai("metrics", "--base-url", srv.base_url, "--watch", "--count", "3", "--interval", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(docs) == 3 and docs[0]["time"] < docs[1]["time"] < docs[2]["time"]
    r = fakeai("metrics", "--base-url", srv.base_url, "--watch", "--count", "2", "--interval", "0.1")
    assert r.returncode == 0, r.stderr
    assert MODEL in r.stdout and "latency (ms)" in r.stdout
    assert fakeai("metrics", "--base-url", srv.base_url, "--interval", "0").returncode == 2


def test_cache_stats(srv):
    r = fakeai("cache-stats", "--base-url", srv.base_url, "--json")
    assert r.returncode == 0, r.stderr
    kv = json.loads(r.stdout)
    assert kv == httpx.get(srv.base_url + "/kv-cache/metrics", headers={"Authorization": f"Bearer {KEY}"}).json()
    r = fakeai("cache-stats", "--base-url", srv.base_url)
    assert r.returncode == 0, r.stderr
    assert "KV cache" in r.stdout and "hit rate" in r.stdout and MODEL in r.stdout
    w = kv["workers"][0]
    assert f"{w['blocks_total']:,}" in r.stdout


def test_history_file_replay(srv, tmp_path):
    assert wait_for(lambda: srv.history.exists() and len(srv.history.read_text().splitlines()) >= 5, timeout=10)
    lines = [json.loads(line) for line in srv.history.read_text().splitlines()]
    assert all(x["object"] == "metrics" and "cluster" in x for x in lines)
    times = [x["time"] for x in lines]
    assert times == sorted(times)
    copy = tmp_path / "copy.jsonl"
    copy.write_text("\n".join(json.dumps(x) for x in lines[:5]) + "\n")
    r = fakeai("metrics", "--replay", str(copy), "--speed", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["time"] for line in r.stdout.splitlines()] == times[:5]
    r = fakeai("metrics", "--replay", str(copy), "--speed", "100")
    assert r.returncode == 0, r.stderr
    assert "workers" in r.stdout and MODEL in r.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    r = fakeai("metrics", "--replay", str(bad))
    assert r.returncode == 1 and "not a JSON line" in r.stderr


def test_errors_are_reported(srv):
    r = fakeai("status", "--base-url", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot reach" in r.stderr
    r = fakeai("metrics", "--base-url", srv.base_url, "--api-key", "sk-wrong-0123456789abcdef")
    assert r.returncode == 1 and "HTTP 401" in r.stderr and "Incorrect API key" in r.stderr
    r = fakeai("metrics", "--base-url", srv.base_url, "--json", "--api-key", KEY)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["object"] == "metrics"
