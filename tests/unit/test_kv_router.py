"""The router (cluster.router): Dynamo's KV-aware cost with temperature, and the other strategies."""

from __future__ import annotations

import math
import random
from collections import Counter, OrderedDict
from types import SimpleNamespace

import pytest

from fakeai.engine.cluster import kvhash
from fakeai.engine.cluster.radix import PrefixCache
from fakeai.engine.cluster.router import Hints, Router, cost, softmax_pick
from fakeai.engine.errors import EngineError

BS = 16


class FakeWorker:
    def __init__(self, index: int, cached: list[int] = (), backlog: int = 0, active: int = 0,
                 running: int = 0, waiting: int = 0, max_num_seqs: int = 256) -> None:
        self.index = index
        self.block_size = BS
        self.kv = SimpleNamespace(caching=True, tree=PrefixCache())
        if cached:
            blocks, _ = self.kv.tree.insert(None, list(cached))
            self.kv.tree.release(blocks)
        self.sched = SimpleNamespace(backlog=backlog)
        self.kv_blocks_active = active
        self.running, self.waiting, self.max_num_seqs = running, waiting, max_num_seqs
        self.draining = False

    def __repr__(self) -> str:
        return f"w{self.index}"


def pool(*workers) -> SimpleNamespace:
    return SimpleNamespace(serving=list(workers), rr=-1, sessions=OrderedDict())


def request(prompt: int, ids: list[int] | None = None) -> SimpleNamespace:
    return SimpleNamespace(prompt=prompt, hashes=kvhash.sequence_hashes(ids, BS) if ids else None)


IDS = list(range(320))  # 20 blocks
HASHES = kvhash.sequence_hashes(IDS, BS)


def test_cost_is_dynamos_formula():
    w = FakeWorker(0, backlog=64, active=10)
    # prefill blocks (64 + 320 - 5 x 16) / 16 = 19, decode blocks 10 + 20 = 30
    assert cost(w, 320, 5, 1.0) == pytest.approx(19 + 30)
    assert cost(w, 320, 5, 2.5) == pytest.approx(2.5 * 19 + 30)
    assert cost(w, 320, 5, 0.0) == pytest.approx(30)  # weight 0: load only
    assert cost(w, 17, 0, 1.0) == pytest.approx((64 + 17) / 16 + 10 + 2)  # a partial block counts


def test_temperature_zero_picks_the_cheapest():
    hot = FakeWorker(0, cached=HASHES[:15], active=20)
    cold = FakeWorker(1, active=0)
    r = Router("kv", 1.0, 0.0)
    # hot: 5 + 40 = 45; cold: 20 + 20 = 40
    assert r.pick(pool(hot, cold), request(320, IDS), None) is cold
    # weighting the prefill more makes the cached prompt win: hot 2x5 + 40 = 50 < cold 2x20 + 20 = 60
    assert r.pick(pool(hot, cold), request(320, IDS), Hints(overlap_weight=2.0)) is hot


def test_the_overlap_never_includes_the_last_token():
    w = FakeWorker(0, cached=HASHES)
    r = Router("kv", 1.0, 0.0)
    other = FakeWorker(1)
    # all 20 blocks cached, but a 320-token prompt may only reuse 19 (the last token is computed)
    assert cost(w, 320, 19, 1.0) == pytest.approx(1 + 20)
    assert r.pick(pool(w, other), request(320, IDS), None) is w


def test_ties_go_to_the_smaller_cache_then_at_random():
    big = FakeWorker(0, cached=kvhash.sequence_hashes(list(range(5000, 5160)), BS))
    small = FakeWorker(1)
    r = Router("kv", 1.0, 0.0, random.Random(1))
    assert {r.pick(pool(big, small), request(32), None) for _ in range(20)} == {small}
    a, b = FakeWorker(2), FakeWorker(3)
    assert {r.pick(pool(a, b), request(32), None) for _ in range(200)} == {a, b}


def test_softmax_sampling_follows_normalised_costs():
    rng = random.Random(7)
    costs = [10.0, 15.0, 20.0]
    t = 0.5
    counts = Counter(softmax_pick(costs, t, rng) for _ in range(30000))
    z = [math.exp(-(c - 10) / (10 * t)) for c in costs]
    for i, zi in enumerate(z):
        assert counts[i] / 30000 == pytest.approx(zi / sum(z), abs=0.015)
    assert Counter(softmax_pick([3.0, 3.0], 1.0, rng) for _ in range(2000))[0] == pytest.approx(1000, abs=120)


def test_temperature_spreads_requests_that_argmin_would_not():
    workers = [FakeWorker(i, active=i * 4) for i in range(3)]
    r = Router("kv", 1.0, 0.0)
    assert {r.pick(pool(*workers), request(64), None).index for _ in range(50)} == {0}
    warm = Router("kv", 1.0, 1.0, random.Random(3))
    assert {warm.pick(pool(*workers), request(64), None).index for _ in range(300)} == {0, 1, 2}


def test_full_workers_are_avoided():
    full = FakeWorker(0, cached=HASHES[:19], running=4, max_num_seqs=4)
    free = FakeWorker(1, active=100)
    assert Router("kv", 1.0, 0.0).pick(pool(full, free), request(320, IDS), None) is free


def test_round_robin_random_and_least_loaded():
    ws = [FakeWorker(i) for i in range(3)]
    p = pool(*ws)
    rr = Router("round_robin", 1.0, 0.0)
    assert [rr.pick(p, request(10), None).index for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    rnd = Router("random", 1.0, 0.0, random.Random(5))
    assert Counter(rnd.pick(p, request(10), None).index for _ in range(3000)).keys() == {0, 1, 2}
    ws[0].running, ws[1].running, ws[2].running = 3, 1, 1
    ws[1].kv_blocks_active, ws[2].kv_blocks_active = 9, 2
    assert Router("least_loaded", 1.0, 0.0).pick(p, request(10), None) is ws[2]


def test_session_affinity_sticks_and_per_request_strategy_overrides():
    ws = [FakeWorker(i) for i in range(4)]
    p = pool(*ws)
    r = Router("session", 1.0, 0.0, random.Random(2))
    first = r.pick(p, request(10), Hints(session="abc"))
    for w in ws:  # make every other worker look better
        w.kv_blocks_active = 0 if w is not first else 500
    assert all(r.pick(p, request(10), Hints(session="abc")) is first for _ in range(10))
    assert r.pick(p, request(10), Hints(session="other")) is not first  # a new session: kv routing
    first.draining = True  # its worker goes away: the session moves
    assert r.pick(p, request(10), Hints(session="abc")) is not first
    rr = Router("kv", 1.0, 0.0)
    assert [rr.pick(p, request(10), Hints(strategy="round_robin")).index for _ in range(3)] == [1, 2, 3]


def test_header_values_are_checked():
    assert Hints.parse("least_loaded", "s1", "0.5", "2") == Hints("least_loaded", "s1", 0.5, 2.0)
    assert Hints.parse(None, None, None, None) == Hints()
    with pytest.raises(EngineError, match="x-fakeai-router"):
        Hints.parse("fastest", None, None, None)
    for bad in ("-1", "abc", "nan", "inf"):
        with pytest.raises(EngineError):
            Hints.parse(None, None, bad, None)
