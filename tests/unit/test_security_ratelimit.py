"""The rate limiter on its in-memory ``limits`` storage: exact counting under
concurrency, give-back of refused requests, reconciliation, tiers and header formats."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeai.security.ratelimit import TIERS, Limiter, Limits, Policy, RateLimited, duration, tier_table
from fakeai.security.ratelimit import _Memory as MemoryStorage


def limiter(**kw) -> Limiter:
    return Limiter(Policy(**kw), MemoryStorage)


def headers(res) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in res.headers}


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.0004, "1ms"), (0.02, "20ms"), (0.999, "999ms"), (1, "1s"), (8.64, "8.64s"),
    (59.9996, "1m0s"), (360, "6m0s"), (61.5, "1m1.5s"), (3600, "1h0m0s"), (86399, "23h59m59s"),
])
def test_durations_are_written_as_openai_does(seconds, text):
    assert duration(seconds) == text


def test_tier_table_has_openais_tiers_in_order():
    table = tier_table()
    assert tuple(table) == TIERS
    for tier, rows in table.items():
        patterns = [p for p, _ in rows]
        assert patterns[-1] == "*", tier  # the catch-all comes last
        assert patterns.index("gpt-4o-mini*") < patterns.index("gpt-4o*") if "gpt-4o*" in patterns else True
    t1 = Policy(tier="tier-1")
    assert t1.limits("gpt-4o") == Limits(rpm=500, tpm=30_000)
    assert t1.limits("gpt-4o-2024-08-06") == Limits(rpm=500, tpm=30_000)
    assert t1.limits("gpt-4o-mini") == Limits(rpm=500, tpm=200_000, rpd=10_000)
    assert Policy(tier="free").limits("gpt-4o-mini") == Limits(rpm=3, tpm=40_000, rpd=200)
    tpm = [Policy(tier=t).limits("gpt-4o").tpm for t in TIERS[1:]]
    assert tpm == sorted(tpm) and tpm[-1] == 30_000_000


def test_flags_override_the_tier_and_any_limit_turns_limiting_on():
    assert not Policy().enabled
    assert Policy(rpm=1).enabled and Policy(tier="tier-2").enabled and Policy(tpd=5).enabled
    p = Policy(tier="tier-1", rpm=7, tpd=9)
    assert p.limits("gpt-4o") == Limits(rpm=7, tpm=30_000, rpd=None, tpd=9)
    assert Policy(tpm=100).limits("anything") == Limits(tpm=100)


def test_concurrent_reservations_are_exact():
    lim = limiter(rpm=10)

    async def run():
        return await asyncio.gather(*(lim.reserve("k", "m", 1) for _ in range(11)), return_exceptions=True)

    out = asyncio.run(run())
    refused = [r for r in out if isinstance(r, RateLimited)]
    assert len(refused) == 1 and refused[0].kind == "requests"
    remaining = sorted(int(headers(r)["x-ratelimit-remaining-requests"]) for r in out if not isinstance(r, Exception))
    assert remaining == list(range(10))


def test_a_refused_request_takes_nothing():
    async def run():
        lim = limiter(rpm=3, tpm=100)
        await lim.reserve("k", "m", 60)
        with pytest.raises(RateLimited) as e:  # the requests counter passes, the tokens one does not
            await lim.reserve("k", "m", 50)
        assert e.value.kind == "tokens" and 0 < e.value.retry_after <= 60
        h = headers(await lim.reserve("k", "m", 40))  # the refused one gave its request back
        assert h["x-ratelimit-remaining-requests"] == "1" and h["x-ratelimit-remaining-tokens"] == "0"
    asyncio.run(run())


def test_settle_corrects_the_estimate():
    async def run():
        lim = limiter(tpm=1000, tpd=5000)
        res = await lim.reserve("k", "m", 900)
        assert headers(res)["x-ratelimit-remaining-tokens"] == "100"
        await res.settle(120)
        assert headers(await lim.reserve("k", "m", 100))["x-ratelimit-remaining-tokens"] == "780"
    asyncio.run(run())


def test_keys_and_models_have_separate_budgets():
    async def run():
        lim = limiter(rpm=1)
        await lim.reserve("key-a", "m1", 1)
        await lim.reserve("key-a", "m2", 1)
        await lim.reserve("key-b", "m1", 1)
        with pytest.raises(RateLimited):
            await lim.reserve("key-a", "m1", 1)
    asyncio.run(run())


def test_too_large_a_request_is_refused_without_a_wait():
    async def run():
        lim = limiter(rpm=5, tpm=100)
        with pytest.raises(RateLimited) as e:
            await lim.reserve("k", "m", 101)
        assert e.value.retry_after is None and e.value.message.startswith("Request too large for m")
        assert headers(await lim.reserve("k", "m", 1))["x-ratelimit-remaining-requests"] == "4"
    asyncio.run(run())


def test_quantized_limits_use_short_windows():
    async def run():
        lim = limiter(rpm=600, quantum_s=1)  # 10 per second
        outs = [await lim.reserve("k", "m", 1) for _ in range(10)]
        h = headers(outs[0])
        assert h["x-ratelimit-limit-requests"] == "10"
        assert h["x-ratelimit-reset-requests"].endswith("ms") or h["x-ratelimit-reset-requests"] == "1s"
        with pytest.raises(RateLimited) as e:
            await lim.reserve("k", "m", 1)
        assert e.value.retry_after <= 1 and "per 1s" in e.value.message
    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 200), costs=st.lists(st.integers(1, 80), min_size=1, max_size=40))
def test_concurrent_token_reservations_never_exceed_the_limit(limit, costs):
    """However costs interleave, what is admitted fits the limit, and a refusal only
    happens when the request would not have fitted."""
    lim = limiter(tpm=limit)

    async def one(cost):
        try:
            await lim.reserve("k", "m", cost)
            return cost
        except RateLimited:
            return -cost

    out = asyncio.run(_gather(one, costs))
    admitted = sum(c for c in out if c > 0)
    assert admitted <= limit
    for c in out:
        if c < 0:
            assert admitted + (-c) > limit or -c > limit


async def _gather(fn, items):
    return await asyncio.gather(*(fn(x) for x in items))


def test_a_request_over_one_limit_counts_in_none_of_its_windows():
    """The in-process store counts a request in all its windows or in none: refused on
    tokens per minute, it leaves the request and day counters as they were."""
    async def run():
        lim = limiter(rpm=100, rpd=1000, tpm=100, tpd=10_000)
        first = headers(await lim.reserve("k", "m", 60))
        with pytest.raises(RateLimited) as refused:
            await lim.reserve("k", "m", 50)
        assert refused.value.kind == "tokens"
        storage = lim.storage
        counts = {s.label: await storage.get(s.key) for s in lim.specs("k", "m")}
        assert counts == {"requests per min (RPM)": 1, "requests per day (RPD)": 1,
                          "tokens per min (TPM)": 60, "tokens per day (TPD)": 60}
        after = headers(await lim.reserve("k", "m", 40))
        assert first["x-ratelimit-remaining-requests"] == "99" and after["x-ratelimit-remaining-requests"] == "98"
        assert after["x-ratelimit-remaining-tokens"] == "0"
    asyncio.run(run())
