"""Configured TTFT and ITL hold at low concurrency (generous bounds: the benchmark proves load)."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest

from tests.server import run_server


def stream_times(base_url: str, max_tokens: int) -> tuple[float, list[float]]:
    payload = {"model": "gpt-4o-mini", "stream": True, "max_tokens": max_tokens,
               "messages": [{"role": "user", "content": "hi"}], "ignore_eos": True}
    times = []
    with httpx.Client(base_url=base_url, timeout=30) as c:
        t0 = time.perf_counter()
        with c.stream("POST", "/v1/chat/completions", json=payload) as r:
            for line in r.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    times.append(time.perf_counter())
    return times[0] - t0, [b - a for a, b in zip(times, times[1:])]


@pytest.fixture(scope="module")
def timed():
    with run_server("--ttft", "300", "--itl", "20") as s:
        yield s


def test_streaming_ttft_and_itl(timed):
    ttft, gaps = stream_times(timed.base_url, 40)
    assert len(gaps) == 39
    assert 0.300 <= ttft < 0.600
    assert 0.018 <= statistics.median(gaps) < 0.030
    assert 39 * 0.020 * 0.95 <= sum(gaps) < 39 * 0.020 * 1.5  # absolute deadlines: no drift


def test_non_streaming_waits_for_the_whole_generation(timed):
    with httpx.Client(base_url=timed.base_url, timeout=30) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "max_tokens": 30, "ignore_eos": True,
                                                 "messages": [{"role": "user", "content": "hi"}]})
        elapsed = time.perf_counter() - t0
    assert r.json()["usage"]["completion_tokens"] == 30
    assert 0.300 + 29 * 0.020 <= elapsed < 2.0


def test_catalog_profile_scales_ttft_with_prompt_length():
    # no --ttft: TTFT = overhead + ms/token x prompt tokens, from the catalog profile
    with run_server() as s:
        short, _ = stream_times(s.base_url, 2)
        payload = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 2,
                   "messages": [{"role": "user", "content": "lorem " * 20000}]}
        with httpx.Client(base_url=s.base_url, timeout=60) as c:
            t0 = time.perf_counter()
            with c.stream("POST", "/v1/chat/completions", json=payload) as r:
                for line in r.iter_lines():
                    if '"content":"' in line and '"content":""' not in line:
                        break
            long_ttft = time.perf_counter() - t0
    from fakeai.registry import ModelRegistry

    prof = ModelRegistry.load().get("gpt-4o-mini").latency
    expected = (prof.prefill_overhead_ms + prof.prefill_ms_per_token * 20000) / 1000
    assert long_ttft >= expected * 0.75  # jitter may shave a little
    assert long_ttft > short
