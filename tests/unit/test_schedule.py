"""Schedule maths, the shared timer and Engine.run with pinned timing, on a fake clock.

(Admission, queueing and the step loop are tested in test_batch_scheduler.py.)"""

from __future__ import annotations

import asyncio
import random

import pytest

from fakeai.engine import schedule
from fakeai.engine.clock import Ticker
from fakeai.engine.latency import LatencyModel, Timing, noise_factor


# -- pure maths -------------------------------------------------------------------
def test_deadlines_are_absolute():
    assert schedule.deadline(10.0, 0.02, 0) == 10.0
    assert schedule.deadline(10.0, 0.02, 50) == pytest.approx(11.0)
    assert schedule.finish_time(10.0, 0.02, 64) == pytest.approx(10.0 + 63 * 0.02)
    assert schedule.finish_time(10.0, 0.02, 1) == 10.0
    assert schedule.finish_time(10.0, 0.02, 0) == 10.0


def test_due_count():
    first, itl = 5.0, 0.1
    assert schedule.due_count(first, itl, 4.999, 10) == 0
    assert schedule.due_count(first, itl, 5.0, 10) == 1
    assert schedule.due_count(first, itl, 5.0999, 10) == 1
    assert schedule.due_count(first, itl, 5.1, 10) == 2  # exactly on a deadline counts
    assert schedule.due_count(first, itl, 5.35, 10) == 4
    assert schedule.due_count(first, itl, 99.0, 10) == 10  # never more than total
    assert schedule.due_count(first, 0.0, 5.0, 10) == 10  # zero ITL: all at once


def test_slot_never_before_deadline():
    for when in (0.0011, 0.001, 1.23456, 1000.0004):
        slot = schedule.slot_of(when, 0.001)
        assert slot * 0.001 >= when - 1e-9
        assert slot * 0.001 < when + 0.001


# -- fake clock ---------------------------------------------------------------------
class FakeTicker:
    """Virtual time: sleeping jumps the clock to the deadline plus a chosen lateness."""

    def __init__(self, lateness: float = 0.0) -> None:
        self.now = 100.0
        self.lateness = lateness
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep_until(self, when: float) -> None:
        self.sleeps.append(when)
        self.now = max(self.now, when + self.lateness)


def _Gen(steps: int, ttft: float, itl: float, arrival: float | None = None):
    from fakeai.engine.core import Generation
    from fakeai.engine.output import Choice
    from fakeai.registry import ModelRegistry

    model = ModelRegistry.load().get("gpt-4o-mini")
    return Generation(model, 1, [Choice([0] * steps, [""] * steps, "stop")], Timing(ttft, itl), arrival=arrival)


def _engine(ticker, max_running=4):
    """An engine whose TTFT and ITL are pinned: each request keeps its Generation's timing."""
    from fakeai.config import Settings
    from fakeai.engine.core import Engine
    from fakeai.registry import ModelRegistry

    return Engine(Settings(ttft_ms=0, itl_ms=0, max_num_seqs=max_running), ModelRegistry.load(), ticker=ticker)


async def _collect(eng, gen):
    out = []
    async for start, end in eng.run(gen):
        out.append((eng.ticker.time(), start, end))
    return out


def test_run_emits_each_token_on_its_deadline():
    t = FakeTicker()
    out = asyncio.run(_collect(_engine(t), _Gen(5, ttft=0.2, itl=0.02)))
    assert [(s, e) for _, s, e in out] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    times = [round(when - 100.0, 6) for when, _, _ in out]
    assert times == [0.2, 0.22, 0.24, 0.26, 0.28]


def test_late_wakeups_coalesce_without_drift():
    # every wake-up is 45 ms late with a 20 ms ITL: due tokens go out together,
    # and the schedule stays anchored to the first deadline
    t = FakeTicker(lateness=0.045)
    out = asyncio.run(_collect(_engine(t), _Gen(10, ttft=0.1, itl=0.02)))
    ranges = [(s, e) for _, s, e in out]
    assert ranges[0] == (0, 3)  # woke at 0.145: tokens due at .10, .12, .14
    assert ranges[-1][1] == 10
    assert all(b[0] == a[1] for a, b in zip(ranges, ranges[1:]))  # contiguous, nothing lost
    assert len(out) < 10  # coalesced into fewer writes
    for when, _, end in out:  # never emits a token before its deadline
        assert schedule.deadline(100.1, 0.02, end - 1) <= when + 1e-9


def test_ttft_counts_from_arrival_unless_queued():
    # parsed and admitted 30 ms after arrival: the first token is still due at arrival + TTFT
    t = FakeTicker()
    eng = _engine(t, max_running=1)
    out = asyncio.run(_collect(eng, _Gen(2, ttft=0.2, itl=0.02, arrival=t.now - 0.03)))
    assert round(out[0][0] - 100.0, 6) == 0.17

    async def queued():
        blocker = eng.run(_Gen(2, ttft=0.0, itl=5.0, arrival=t.now))
        await blocker.__anext__()  # its first token is out: it holds the only slot
        gen = _Gen(1, ttft=0.2, itl=0.02, arrival=t.now - 0.03)
        task = asyncio.create_task(_collect(eng, gen))
        await asyncio.sleep(0)
        assert eng.cluster.waiting == 1
        t.now += 1.0  # the slot frees a second later
        await blocker.aclose()
        return await task

    start = t.now
    out = asyncio.run(queued())
    assert round(out[0][0] - start, 6) == 1.2  # queued: TTFT counts from admission


def test_zero_latency_is_one_write():
    t = FakeTicker()
    out = asyncio.run(_collect(_engine(t), _Gen(128, ttft=0.0, itl=0.0)))
    assert [(s, e) for _, s, e in out] == [(0, 128)]


def test_ticker_groups_waiters_into_one_timer_per_slot():
    async def main():
        loop = asyncio.get_running_loop()
        armed = []
        real_call_at = loop.call_at

        def spy(when, cb, *args):
            armed.append(when)
            return real_call_at(when, cb, *args)

        loop.call_at = spy
        ticker = Ticker(0.005)
        t0 = loop.time()
        target = t0 + 0.02
        await asyncio.gather(*(ticker.sleep_until(target) for _ in range(50)))
        assert loop.time() >= target
        assert len(armed) == 1  # fifty waiters, one loop timer
        assert ticker.pending_slots == 0
        await ticker.sleep_until(t0 - 1)  # past deadlines return at once
        assert len(armed) == 1

    asyncio.run(main())


# -- latency model ------------------------------------------------------------------
class _Profile:
    prefill_overhead_ms, prefill_ms_per_token, itl_ms, jitter, jitter_dist = 20.0, 0.1, 10.0, 0.1, "normal"


def test_latency_model_prefill_formula():
    lm = LatencyModel.build(_Profile, None, None, 0.0, "normal")
    assert lm.ttft_s(1000) == pytest.approx((20 + 0.1 * 1000) / 1000)
    assert lm.itl_s() == pytest.approx(0.010)


def test_fixed_ttft_replaces_prefill_and_disables_profile_jitter():
    lm = LatencyModel.build(_Profile, 300.0, 15.0, None, "normal")
    rng = random.Random(1)
    assert lm.ttft_s(5000, rng) == pytest.approx(0.3)
    assert lm.itl_s(rng) == pytest.approx(0.015)
    profile_jitter = LatencyModel.build(_Profile, None, None, None, "normal")
    assert profile_jitter.jitter == 0.1


@pytest.mark.parametrize("dist", ["normal", "lognormal"])
def test_noise_factor_mean_and_spread(dist):
    rng = random.Random(7)
    xs = [noise_factor(0.1, dist, rng) for _ in range(20000)]
    mean = sum(xs) / len(xs)
    sd = (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5
    assert mean == pytest.approx(1.0, abs=0.01)
    assert sd == pytest.approx(0.1, abs=0.01)
    assert min(xs) >= 0.25 and max(xs) <= 4.0
