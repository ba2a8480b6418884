"""The accumulators behind the record-fed series: bucket placement, weighted observations, and the
bucket layouts of vLLM and Dynamo."""

from __future__ import annotations

import itertools
import random

from fakeai.telemetry.series import Family, Hist, buckets_1_2_5, le_text, log_buckets


def test_a_value_on_a_bound_falls_in_that_bucket():
    h = Hist((0.1, 0.5, 1.0))
    for v in (0.1, 0.10001, 0.5, 3.0):
        h.observe(v)
    assert h.cumulative() == [("0.1", 1), ("0.5", 3), ("1.0", 3), ("+Inf", 4)]
    assert h.count == 4
    assert abs(h.sum - 3.70001) < 1e-9


def test_observe_n_equals_n_observations():
    rng = random.Random(7)
    bounds = (0.01, 0.025, 0.05, 0.1, 0.5)
    for _ in range(200):
        value, n = rng.uniform(0, 0.7), rng.randint(1, 50)
        one, many = Hist(bounds), Hist(bounds)
        one.observe_n(value, n)
        for _ in range(n):
            many.observe(value)
        assert one.counts == many.counts
        assert abs(one.sum - many.sum) < 1e-9


def test_vllm_token_buckets_are_1_2_5_up_to_the_context():
    assert buckets_1_2_5(100) == [1, 2, 5, 10, 20, 50, 100]
    b = buckets_1_2_5(131072)
    assert b[-1] == 100000 and b[-2] == 50000 and len(b) == 16


def test_dynamo_log_buckets():
    # Dynamo's request-duration default: 512 ** (i / 9) = 2, 4, ..., 512 for i = 1..9, to two
    # significant figures (128 -> 130), after a 0 bucket
    assert log_buckets(1.0, 512.0, 10) == [0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 130.0, 260.0, 510.0]
    ttft = log_buckets(0.001, 480.0, 18)
    assert ttft[0] == 0.0 and ttft[1] == 0.0022 and ttft[-1] == 480.0 and len(ttft) == 18
    assert all(a < b for a, b in itertools.pairwise(ttft))
    assert all(len(f"{v:.1e}".split("e")[0].replace(".", "").rstrip("0")) <= 2 for v in ttft[1:])


def test_family_children_and_bound_text():
    f = Family("x", "doc", "histogram", ("a",), (1.0, 2.0))
    assert f.child(("p",)) is f.child(("p",))
    assert f.child(("q",), (5.0,)).bounds == (5.0,)
    c = Family("y", "doc", "counter", ("a",))
    c.child(("p",))[0] += 3
    assert c.children[("p",)] == [3.0]
    assert [le_text(v) for v in (0.3, 1, 7680.0, float("inf"))] == ["0.3", "1.0", "7680.0", "+Inf"]
