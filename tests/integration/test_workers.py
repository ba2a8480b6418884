"""``fakeai server --workers 2``: two processes on one socket behave as one server.

Every request here opens a new connection (``connection: close``), so the kernel hands
requests to both processes; which process served a chat request shows in its
``engine`` label (process 0 simulates the even engines, process 1 the odd ones).
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server import run_server, wait_for

ADMIN = "sk-admin-workers-test"
CLOSE = {"connection": "close"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


def _chat(base: str, headers: dict | None = None) -> httpx.Response:
    return httpx.post(base + "/v1/chat/completions", json=CHAT, headers={**CLOSE, **(headers or {})}, timeout=30)


def _successes(base: str, headers: dict | None = None) -> dict[str, float]:
    """vllm:request_success_total of gpt-4o per engine, from one scrape."""
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(httpx.get(base + "/metrics", headers=headers, timeout=30).text):
        if fam.name == "vllm:request_success":
            for s in fam.samples:
                if s.name.endswith("_total") and s.labels["model_name"] == "gpt-4o":
                    out[s.labels["engine"]] = out.get(s.labels["engine"], 0.0) + s.value
    return out


@pytest.fixture(scope="module")
def server():
    with run_server("--workers", "2", "--ttft", "0", "--itl", "0", "--admin-key", ADMIN) as s:
        # both processes up: each publishes its default model's engines
        assert wait_for(lambda: {"0", "1"} <= set(re.findall(r'engine="(\d+)"', httpx.get(
            s.base_url + "/metrics").text)), timeout=20), "the second process never published its metrics"
        yield s


def test_one_scrape_sees_every_process(server):
    base = server.base_url
    before = sum(_successes(base).values())
    for _ in range(40):
        assert _chat(base).status_code == 200
    # the other process's figures arrive with its next snapshot (every second)
    assert wait_for(lambda: sum(_successes(base).values()) - before == 40, timeout=5)
    engines = {e for e, v in _successes(base).items() if v}
    assert {int(e) % 2 for e in engines} == {0, 1}, f"only one process served: engines {engines}"
    # GPU telemetry of both processes' GPUs, each GPU once
    gpus = re.findall(r'^DCGM_FI_DEV_GPU_UTIL\{[^}]*gpu="(\d+)"', httpx.get(base + "/dcgm/metrics").text, re.M)
    assert len(gpus) == len(set(gpus)) and {int(g) % 2 for g in gpus} == {0, 1}


def test_keys_and_runtime_changes_reach_every_process(server):
    base = server.base_url
    admin = {"authorization": f"Bearer {ADMIN}"}
    r = httpx.post(base + "/admin/keys", json={"name": "workers"}, headers={**admin, **CLOSE})
    assert r.status_code == 200, r.text
    key = {"authorization": f"Bearer {r.json()['key']}"}
    # within the sync interval every process takes the stored key and turns authentication on
    assert wait_for(lambda: all(_chat(base, key).status_code == 200 for _ in range(10))
                    and all(_chat(base).status_code == 401 for _ in range(10)), timeout=10)
    try:
        r = httpx.patch(base + "/admin/config", json={"ttft_ms": 250}, headers={**admin, **CLOSE})
        assert r.status_code == 200, r.text

        def slow_everywhere() -> bool:
            times = []
            for _ in range(12):
                t0 = time.perf_counter()
                assert _chat(base, key).status_code == 200
                times.append(time.perf_counter() - t0)
            return min(times) >= 0.25

        assert wait_for(slow_everywhere, timeout=10)
        engines = {e for e, v in _successes(base, key).items() if v}
        assert {int(e) % 2 for e in engines} == {0, 1}
    finally:
        httpx.patch(base + "/admin/config", json={"ttft_ms": 0}, headers={**admin, **CLOSE})
        key_id = httpx.get(base + "/admin/keys", headers=admin).json()["data"][-1]["id"]
        assert httpx.delete(base + f"/admin/keys/{key_id}", headers={**admin, **CLOSE}).status_code == 200


def test_rate_limits_and_files_are_shared():
    with run_server("--workers", "2", "--ttft", "0", "--itl", "0", "--rate-limit-rpm", "10") as s:
        base = s.base_url
        codes = [_chat(base).status_code for _ in range(14)]
        assert codes.count(200) == 10 and codes.count(429) == 4, codes
        assert codes[:10] == [200] * 10  # in order: the shared counter, not two budgets of 10
        client = s.client()
        f = client.files.create(file=("a.txt", b"shared by both processes"), purpose="assistants")
        seen = {httpx.get(base + f"/v1/files/{f.id}", headers={**CLOSE, "authorization": "Bearer x"}).status_code
                for _ in range(10)}
        assert seen == {200}


def test_memory_store_is_refused_with_several_workers():
    with pytest.raises(RuntimeError, match="several processes cannot share the memory store"):
        with run_server("--workers", "2", "--store", "memory", ready_timeout=10):
            pass


def test_a_process_that_dies_is_replaced():
    import os
    import signal

    with run_server("--workers", "2", "--ttft", "0", "--itl", "0") as s:
        base = s.base_url

        def pids() -> set[int]:
            return {httpx.get(base + "/health/detailed", headers=CLOSE).json()["process"]["pid"] for _ in range(12)}

        assert wait_for(lambda: len(pids()) == 2, timeout=20)
        victim = min(pids())
        os.kill(victim, signal.SIGKILL)
        # the supervisor starts a new process in its slot; the server never stops answering
        assert wait_for(lambda: len(p := pids()) == 2 and victim not in p, timeout=30)
        assert all(_chat(base).status_code == 200 for _ in range(10))
