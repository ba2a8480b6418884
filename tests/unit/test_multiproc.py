"""The pieces of ``--workers N``: slots, shared rate-limit counters, merged metrics."""

from __future__ import annotations

import asyncio
import multiprocessing
import os

from prometheus_client.parser import text_string_to_metric_families

from fakeai.security.shared_counters import SharedCounters
from fakeai.telemetry.kv_events import endpoint_for_rank
from fakeai.telemetry.siblings import merge

A = b"""# HELP vllm:num_requests_running Requests running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# HELP dynamo_frontend_requests_total Requests.
# TYPE dynamo_frontend_requests_total counter
dynamo_frontend_requests_total{model="m"} 10.0
# HELP vllm:e2e_request_latency_seconds Latency.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0"} 2.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf"} 4.0
vllm:e2e_request_latency_seconds_count{engine="0"} 4.0
vllm:e2e_request_latency_seconds_sum{engine="0"} 5.5
# HELP vllm:cache_config_info Cache config.
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16"} 1.0
# HELP process_start_time_seconds Start time.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 200.0
"""
B = A.replace(b'engine="0"', b'engine="1"').replace(b"} 10.0", b"} 7.0").replace(b" 200.0", b" 100.0")


def _values(text: bytes) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}


def test_merge_lists_distinct_series_and_sums_shared_ones():
    merged = merge([A, B])
    v = _values(merged)
    # different engines side by side, each with its own value
    assert v[("vllm:num_requests_running", (("engine", "0"), ("model_name", "m")))] == 3.0
    assert v[("vllm:num_requests_running", (("engine", "1"), ("model_name", "m")))] == 3.0
    # the same series in both processes: summed
    assert v[("dynamo_frontend_requests_total", (("model", "m"),))] == 17.0
    # info series are not doubled; a start time is the earliest
    assert v[("vllm:cache_config_info", (("block_size", "16"),))] == 1.0
    assert v[("process_start_time_seconds", ())] == 100.0
    # a histogram stays a histogram, bucket by bucket
    assert b"# TYPE vllm:e2e_request_latency_seconds histogram" in merged
    assert v[("vllm:e2e_request_latency_seconds_bucket", (("engine", "1"), ("le", "+Inf")))] == 4.0
    assert merged.count(b"# TYPE dynamo_frontend_requests_total counter") == 1
    # merging the same text twice doubles exactly the additive series
    twice = _values(merge([A, A]))
    assert twice[("vllm:e2e_request_latency_seconds_sum", (("engine", "0"),))] == 11.0
    assert twice[("vllm:cache_config_info", (("block_size", "16"),))] == 1.0


def _hammer(path: str, n: int) -> None:
    c = SharedCounters(path)
    for _ in range(n):
        c.hit("k", 60, 1)


def test_shared_counters_count_exactly_across_processes(tmp_path):
    path = os.path.join(tmp_path, "ratelimits.sqlite")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(path, 300)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    c = SharedCounters(path)
    assert asyncio.run(c.get("k")) == 900
    assert c.hit("k", 60, -900) == 0
    # a window that is over starts again from the amount
    assert c.hit("short", 0, 5) == 5 and c.hit("short", 0, 5) == 5


def test_kv_event_endpoints_are_offset_per_process():
    assert endpoint_for_rank("tcp://*:5557", 0) == "tcp://*:5557"
    assert endpoint_for_rank("tcp://*:5557", 3) == "tcp://*:5560"
    assert endpoint_for_rank("ipc:///tmp/kv", 1) == "ipc:///tmp/kv_dp1"
