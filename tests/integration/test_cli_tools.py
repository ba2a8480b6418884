"""The client-side CLI commands, run as a user would against a live server."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.server import run_server


def _fakeai(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakeai", *args], capture_output=True, text=True, timeout=120)


def test_bench_measures_what_the_server_was_told():
    with run_server("--ttft", "60", "--itl", "4", "--output-length", "max") as s:
        out = _fakeai("bench", "--base-url", s.api_url, "-n", "24", "-c", "6", "--max-tokens", "12", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["requests"] == r["succeeded"] == 24 and r["failed"] == 0
    assert r["output_tokens"] == 24 * 12
    assert 0.060 <= r["ttft_s"]["p50"] < 0.5
    assert 0.004 * 0.8 <= r["itl_s"]["p50"] < 0.05
    assert r["e2e_s"]["p50"] >= 0.060 + 11 * 0.004 * 0.9


def test_bench_non_streaming_and_table_output(server):
    out = _fakeai("bench", "--base-url", server.api_url, "-n", "10", "-c", "3", "--no-stream")
    assert out.returncode == 0, out.stderr
    assert "requests/s" in out.stdout and "10 requests" in out.stdout


def test_bench_reports_failures_and_exits_nonzero(server):
    out = _fakeai("bench", "--base-url", server.api_url, "-n", "5", "-c", "2", "--model", "no-such-model", "--json")
    assert out.returncode == 1
    r = json.loads(out.stdout)
    assert r["succeeded"] == 0 and r["failures_by_status"] == {"404": 5}
    bad = _fakeai("bench", "--base-url", server.api_url, "-n", "0")
    assert bad.returncode == 2 and "at least 1" in bad.stderr
