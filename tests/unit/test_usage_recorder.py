"""The usage recorder (aggregation, bucketing, flushing, identities) and the reports built on it."""

from __future__ import annotations

import asyncio

import pytest

from fakeai.config import Settings
from fakeai.registry import ModelRegistry
from fakeai.services.costs import IMAGE_PRICES, Pricer
from fakeai.services.usage_report import Query, costs_page, decode_page, usage_page
from fakeai.store import StoreError, open_store
from fakeai.store.sqlite import SQLiteStore
from fakeai.telemetry.keyids import DEFAULT_PROJECT, KeyIds, redact
from fakeai.telemetry.usage import UsageRecorder, parse_key
from tests.redis_server import run_redis

DAY = 86400
T0 = 1_750_000_000 // DAY * DAY  # a UTC midnight


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Req:
    """What the recorder reads of a request: its ASGI scope."""

    def __init__(self, token: str | None = None, header: bytes = b"authorization", **state) -> None:
        headers = [(b"host", b"x")]
        if token is not None:
            headers.append((header, (f"Bearer {token}" if header == b"authorization" else token).encode()))
        self.scope = {"headers": headers, "state": state}


def run(coro):
    return asyncio.run(coro)


async def _store() -> SQLiteStore:
    s = SQLiteStore(None)
    await s.open()
    return s


def _recorder(store, clock) -> UsageRecorder:
    return UsageRecorder(store, 1000, clock=clock, keys=KeyIds(b"k" * 32))


async def _sums(store, res: str, start: int = 0, end: int = 10**10) -> dict:
    out: dict = {}
    for row in await store.counters("usage." + res, start, end):
        kind, group = parse_key(row.key)
        out[(kind, group["model"], row.ts)] = row.values
    return out


def test_requests_aggregate_per_minute_and_roll_up_to_hours_and_days():
    async def go():
        store, clock = await _store(), Clock(T0 + 3600 + 30)
        rec = _recorder(store, clock)
        rec.record("completions", "gpt-4o", input_tokens=10, output_tokens=5)
        clock.t += 20  # same minute
        rec.record("completions", "gpt-4o", input_tokens=1, output_tokens=2, input_cached_tokens=0)
        clock.t += 60  # next minute, same hour
        rec.record("completions", "gpt-4o", input_tokens=100, output_tokens=50)
        rec.record("embeddings", "text-embedding-3-small", input_tokens=7)
        await rec.flush()
        m = T0 + 3600
        minutes = await _sums(store, "1m")
        assert minutes[("completions", "gpt-4o", m)] == {"num_model_requests": 2, "input_tokens": 11,
                                                          "output_tokens": 7}
        assert minutes[("completions", "gpt-4o", m + 60)]["input_tokens"] == 100
        hours = await _sums(store, "1h")
        assert hours[("completions", "gpt-4o", m)] == {"num_model_requests": 3, "input_tokens": 111,
                                                        "output_tokens": 57}
        days = await _sums(store, "1d")
        assert days[("completions", "gpt-4o", T0)]["num_model_requests"] == 3
        assert days[("embeddings", "text-embedding-3-small", T0)] == {"num_model_requests": 1, "input_tokens": 7}
        # a second flush adds only what came since
        rec.record("completions", "gpt-4o", input_tokens=1)
        await rec.flush()
        await rec.flush()
        assert (await _sums(store, "1d"))[("completions", "gpt-4o", T0)]["num_model_requests"] == 4
        await store.close()

    run(go())


def test_group_fields_keep_groups_apart():
    async def go():
        store = await _store()
        rec = _recorder(store, Clock(T0))
        rec.record("images", "dall-e-3", images=1, size="1024x1024", source="image.generation")
        rec.record("images", "dall-e-3", images=2, size="1024x1792", source="image.generation")
        rec.record("images", "dall-e-3", images=1, size="1024x1024", source="image.generation")
        await rec.flush()
        groups = {(g["size"], g["source"]): r.values
                  for r in await store.counters("usage.1m", 0, 10**10) for _, g in [parse_key(r.key)]}
        assert groups == {("1024x1024", "image.generation"): {"num_model_requests": 2, "images": 2},
                          ("1024x1792", "image.generation"): {"num_model_requests": 1, "images": 2}}
        await store.close()

    run(go())


def test_identity_from_the_presented_key_and_the_scope_state():
    keys = KeyIds(b"s" * 32)
    a1, p1, u1, b1 = keys.of(Req("sk-alpha").scope)
    a2, *_ = keys.of(Req("sk-beta").scope)
    assert a1.startswith("key_") and a2.startswith("key_") and a1 != a2
    assert "alpha" not in a1 and a1 == keys.of(Req("sk-alpha").scope)[0]  # stable
    assert keys.of(Req("sk-alpha", header=b"x-api-key").scope)[0] == a1  # Anthropic clients
    assert (p1, u1, b1) == (DEFAULT_PROJECT, None, False)
    assert KeyIds(b"t" * 32).of(Req("sk-alpha").scope)[0] != a1  # keyed by the installation's secret
    assert keys.of(Req(None).scope)[0] is None
    # the auth layer's ids and a batch line's marker win
    assert keys.of(Req("sk-alpha", api_key_id="key_auth", project_id="proj_x", batch_id="batch_1").scope) == (
        "key_auth", "proj_x", None, True)
    keys.owners[a1] = ("proj_svc", "svc_acct_1")
    assert keys.of(Req("sk-alpha").scope)[1:3] == ("proj_svc", "svc_acct_1")
    assert keys.redacted(a2) == "sk-...****"  # short keys show nothing of themselves


def test_redaction_shows_at_most_the_last_four_of_long_keys():
    long_key = "sk-proj-" + "x" * 40 + "WXYZ"
    assert redact(long_key) == "sk-proj-...WXYZ"
    assert redact("sk-test") == "sk-...****"
    assert "secret" not in redact("sk-secretsecretsecret")


def test_a_failed_write_is_retried_without_counting_twice():
    class Flaky(SQLiteStore):
        fail_kind = "usage.1h"

        async def add_counters(self, kind, rows):
            if kind == self.fail_kind:
                self.fail_kind = None
                raise StoreError("disk full")
            await super().add_counters(kind, rows)

    async def go():
        store = Flaky(None)
        await store.open()
        rec = _recorder(store, Clock(T0))
        rec.record("embeddings", "m", input_tokens=5)
        with pytest.raises(StoreError):
            await rec.flush()
        rec.record("embeddings", "m", input_tokens=1)
        await rec.flush()
        for res in ("1m", "1h", "1d"):
            assert (await _sums(store, res))[("embeddings", "m", T0)] == {"num_model_requests": 2,
                                                                           "input_tokens": 6}, res
        await store.close()

    run(go())


def test_the_periodic_flush_and_close_write_everything():
    async def go():
        store = await _store()
        rec = UsageRecorder(store, 20, keys=KeyIds(b"k" * 32))
        await rec.open()
        rec.record("moderations", "omni-moderation-latest", input_tokens=3)
        deadline = asyncio.get_running_loop().time() + 5
        while not await store.counters("usage.1d", 0, 10**10):
            assert asyncio.get_running_loop().time() < deadline, "never flushed"
            await asyncio.sleep(0.01)
        rec.record("moderations", "omni-moderation-latest", input_tokens=4)
        await rec.close()
        rows = await store.counters("usage.1d", 0, 10**10)
        assert rows[0].values == {"num_model_requests": 2, "input_tokens": 7}
        await store.close()

    run(go())


def test_keys_used_reach_the_listener_with_redacted_values_only():
    async def go():
        store = await _store()
        rec = _recorder(store, Clock(T0 + 5))
        seen = {}

        async def listener(used):
            seen.update(used)

        rec.on_keys_used = listener
        rec.record("embeddings", "m", request=Req("sk-" + "a" * 40), input_tokens=1)
        await rec.flush()
        (kid, (redacted, ts)), = seen.items()
        assert kid.startswith("key_") and redacted == "sk-...aaaa" and ts == T0 + 5
        await store.close()

    run(go())


# --------------------------------------------------------------------------- reports


def _fill(rec: UsageRecorder, clock: Clock) -> None:
    """Two days of traffic: gpt-4o from two keys on day 0, gpt-4o-mini on day 1."""
    clock.t = T0 + 10
    rec.record("completions", "gpt-4o", api_key_id="key_a", input_tokens=1000, input_cached_tokens=200,
               output_tokens=300)
    clock.t = T0 + 3600 + 10
    rec.record("completions", "gpt-4o", api_key_id="key_b", input_tokens=10, output_tokens=20, batch=True)
    clock.t = T0 + DAY + 70
    rec.record("completions", "gpt-4o-mini", api_key_id="key_a", input_tokens=5, output_tokens=6)


def test_usage_buckets_groups_filters_and_pages():
    async def go():
        store, clock = await _store(), Clock(T0)
        rec = _recorder(store, clock)
        _fill(rec, clock)
        page = await usage_page(rec, "completions", Query(T0, T0 + 3 * DAY, "1d", 2, ("model",)))
        assert [b["start_time"] for b in page["data"]] == [T0, T0 + DAY]
        assert page["has_more"] and decode_page(page["next_page"]) == T0 + 2 * DAY
        day0 = page["data"][0]["results"]
        assert len(day0) == 1 and day0[0]["model"] == "gpt-4o" and day0[0]["api_key_id"] is None
        assert (day0[0]["input_tokens"], day0[0]["input_cached_tokens"], day0[0]["input_uncached_tokens"],
                day0[0]["output_tokens"], day0[0]["num_model_requests"]) == (1010, 200, 810, 320, 2)
        rest = await usage_page(rec, "completions", Query(T0 + 2 * DAY, T0 + 3 * DAY, "1d", 2))
        assert rest["data"][0]["results"] == [] and not rest["has_more"] and rest["next_page"] is None
        by_key = await usage_page(rec, "completions", Query(T0, T0 + DAY, "1h", 24, ("api_key_id", "batch")))
        hours = {b["start_time"]: b["results"] for b in by_key["data"] if b["results"]}
        assert set(hours) == {T0, T0 + 3600}
        assert [(r["api_key_id"], r["batch"]) for r in hours[T0 + 3600]] == [("key_b", True)]
        only_a = await usage_page(rec, "completions", Query(T0, T0 + 2 * DAY, "1d", 7,
                                                            filters={"api_key_ids": frozenset({"key_a"})}))
        assert [b["results"][0]["input_tokens"] for b in only_a["data"]] == [1000, 5]
        no_batch = await usage_page(rec, "completions", Query(T0, T0 + DAY, "1d", 1, batch=False))
        assert no_batch["data"][0]["results"][0]["num_model_requests"] == 1
        minutes = await usage_page(rec, "completions", Query(T0 + DAY, T0 + DAY + 180, "1m", 60))
        assert [bool(b["results"]) for b in minutes["data"]] == [False, True, False]
        await store.close()

    run(go())


def test_vector_store_usage_is_the_level_at_each_bucket_end():
    async def go():
        store, clock = await _store(), Clock(T0 + 100)
        rec = _recorder(store, clock)
        rec.record("vector_stores", "", project_id="proj_a", usage_bytes=1000)
        clock.t = T0 + DAY + 100
        rec.record("vector_stores", "", project_id="proj_a", usage_bytes=500)
        clock.t = T0 + 2 * DAY + 7200
        rec.record("vector_stores", "", project_id="proj_a", usage_bytes=-1500)
        page = await usage_page(rec, "vector_stores", Query(T0, T0 + 3 * DAY, "1d", 3))
        levels = [[r["usage_bytes"] for r in b["results"]] for b in page["data"]]
        assert levels == [[1000], [1500], []]
        # starting later still counts what was stored before
        hours = await usage_page(rec, "vector_stores", Query(T0 + DAY + 3600, T0 + DAY + 7200, "1h", 1))
        assert hours["data"][0]["results"][0]["usage_bytes"] == 1500
        await store.close()

    run(go())


def test_costs_price_tokens_images_and_batch_from_the_catalog():
    registry = ModelRegistry.load()
    pricer = Pricer(registry)

    async def go():
        store, clock = await _store(), Clock(T0)
        rec = _recorder(store, clock)
        _fill(rec, clock)
        clock.t = T0 + 50
        rec.record("images", "dall-e-3", images=2, size="1024x1792", source="image.generation", quality="hd")
        rec.record("moderations", "omni-moderation-latest", input_tokens=50)  # free: no line item
        page = await costs_page(rec, pricer, Query(T0, T0 + DAY, "1d", 1, ("line_item",)))
        items = {r["line_item"]: r for r in page["data"][0]["results"]}
        p = registry.get("gpt-4o").pricing
        assert items["gpt-4o, input"]["amount"]["value"] == pytest.approx(800 * p.input / 1e6)
        assert items["gpt-4o, cached input"]["amount"]["value"] == pytest.approx(200 * p.cached_input / 1e6)
        assert items["gpt-4o, output"]["quantity"] == 300
        assert items["gpt-4o, batch output"]["amount"]["value"] == pytest.approx(20 * p.output / 1e6 / 2)
        assert items["dall-e-3, images"]["amount"]["value"] == pytest.approx(
            2 * IMAGE_PRICES[("dall-e-3", "1024x1792", "hd")])
        assert not any("moderation" in k for k in items)
        total = await costs_page(rec, pricer, Query(T0, T0 + DAY, "1d", 1))
        (only,) = total["data"][0]["results"]
        assert only["line_item"] is None and only["quantity"] is None
        assert only["amount"]["value"] == pytest.approx(sum(r["amount"]["value"] for r in items.values()))
        await store.close()

    run(go())


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_usage_persists_in_every_store_backend(backend, tmp_path):
    """The recorder on a durable store: the same report after reopening it, key ids stable."""
    async def go(settings):
        store = open_store(settings)
        await store.open()
        rec = _recorder(store, Clock(T0 + 10))
        keys = KeyIds()
        await keys.open(store)
        rec.keys = keys
        rec.record("embeddings", "e", request=Req("sk-persist"), input_tokens=9)
        await rec.flush()
        first = await usage_page(rec, "embeddings", Query(T0, T0 + DAY, "1d", 1, ("api_key_id",)))
        await store.close()
        store = open_store(settings)
        await store.open()
        again = KeyIds()
        await again.open(store)
        rec = _recorder(store, Clock(T0 + 20))
        second = await usage_page(rec, "embeddings", Query(T0, T0 + DAY, "1d", 1, ("api_key_id",)))
        await store.close()
        return first, second, keys.of(Req("sk-persist").scope)[0], again.of(Req("sk-persist").scope)[0]

    if backend == "redis":
        with run_redis() as url:
            first, second, k1, k2 = run(go(Settings(store="redis", redis_url=url)))
    else:
        first, second, k1, k2 = run(go(Settings(store="sqlite", data_dir=str(tmp_path))))
    (row,) = first["data"][0]["results"]
    assert (row["input_tokens"], row["api_key_id"]) == (9, k1)
    assert second == first and k1 == k2
