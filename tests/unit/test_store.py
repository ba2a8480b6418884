"""The store interface, run against every backend: SQLite, memory and a real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from fakeai.store import BlobTooLarge, CounterRow, open_store
from fakeai.config import Settings
from tests.redis_server import run_redis


@pytest.fixture(scope="module")
def redis_url():
    with run_redis(durable=False) as url:
        yield url


@pytest.fixture(params=["sqlite", "memory", "redis"])
def make_store(request, tmp_path):
    """A function that opens a fresh store of the backend (same data dir / Redis db each call)."""
    kind = request.param
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        import redis

        redis.Redis.from_url(url).flushdb()
        settings = Settings(store="redis", redis_url=url)
    else:
        settings = Settings(store=kind, data_dir=str(tmp_path / "data"))

    async def make():
        store = open_store(settings)
        await store.open()
        return store

    make.backend = kind
    return make


def run(coro):
    return asyncio.run(coro)


def test_documents_crud_and_update(make_store):
    async def go():
        s = await make_store()
        await s.put("file", {"id": "f1", "bytes": 3})
        assert await s.get("file", "f1") == {"id": "f1", "bytes": 3}
        assert await s.get("file", "nope") is None
        assert await s.get("batch", "f1") is None  # kinds are separate namespaces
        got = await s.update("file", "f1", lambda d: {**d, "bytes": d["bytes"] + 1})
        assert got["bytes"] == 4 and (await s.get("file", "f1"))["bytes"] == 4
        assert await s.update("file", "f1", lambda d: None) == {"id": "f1", "bytes": 4}
        assert await s.update("file", "missing", lambda d: d) is None
        assert await s.delete("file", "f1") is True
        assert await s.delete("file", "f1") is False
        assert await s.get("file", "f1") is None
        await s.close()

    run(go())


def test_concurrent_updates_lose_nothing(make_store):
    async def go():
        s = await make_store()
        await s.put("batch", {"id": "b", "n": 0})
        await asyncio.gather(*(s.update("batch", "b", lambda d: {**d, "n": d["n"] + 1}) for _ in range(50)))
        assert (await s.get("batch", "b"))["n"] == 50
        await s.close()

    run(go())


def test_paging_follows_insertion_order_with_cursors(make_store):
    async def go():
        s = await make_store()
        ids = [f"x{i:02d}" for i in range(25)]
        for i in ids:
            await s.put("file", {"id": i, "even": int(i[1:]) % 2 == 0})
        await s.put("file", {"id": "x03", "even": False, "replaced": True})  # keeps its place
        p = await s.page("file", limit=10)
        assert [d["id"] for d in p.items] == ids[::-1][:10] and p.has_more
        p2 = await s.page("file", limit=10, after=p.last_id)
        assert [d["id"] for d in p2.items] == ids[::-1][10:20] and p2.has_more
        p3 = await s.page("file", limit=10, after=p2.last_id)
        assert [d["id"] for d in p3.items] == ids[::-1][20:] and not p3.has_more
        assert p3.items[-4] == {"id": "x03", "even": False, "replaced": True}
        asc = await s.page("file", limit=5, order="asc", after="x04")
        assert [d["id"] for d in asc.items] == ids[5:10]
        before = await s.page("file", limit=3, order="asc", before="x10")
        assert [d["id"] for d in before.items] == ids[7:10]
        even = await s.page("file", limit=4, match=lambda d: d["even"])
        assert [d["id"] for d in even.items] == ["x24", "x22", "x20", "x18"] and even.has_more
        assert [d["id"] async for d in s.scan("file")] == ids
        assert await s.count("file", match=lambda d: d["even"]) == 13
        assert (await s.page("file", after="gone")).items == []
        await s.close()

    run(go())


def test_children_are_listed_under_their_parent(make_store):
    async def go():
        s = await make_store()
        await s.put("item", {"id": "a1"}, parent="conv_a")
        await s.put("item", {"id": "b1"}, parent="conv_b")
        await s.put("item", {"id": "a2"}, parent="conv_a")
        assert [d["id"] for d in (await s.page("item", parent="conv_a", order="asc")).items] == ["a1", "a2"]
        assert [d["id"] for d in (await s.page("item", parent="conv_b")).items] == ["b1"]
        assert (await s.page("item")).items == []
        await s.close()

    run(go())


def test_blobs_stream_and_round_trip(make_store):
    data = os.urandom(3 * 1024 * 1024 + 17)

    async def chunks():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    async def go():
        s = await make_store()
        info = await s.write_blob("file-1", chunks())
        assert info.size == len(data) and info.md5 == hashlib.md5(data).hexdigest()
        assert await s.blob_size("file-1") == len(data)
        assert await s.read_blob_bytes("file-1") == data
        assert len([c async for c in s.read_blob("file-1", chunk_size=1 << 20)]) >= 3
        await s.write_blob("empty", b"")
        assert await s.read_blob_bytes("empty") == b"" and await s.blob_size("empty") == 0
        with pytest.raises(BlobTooLarge):
            await s.write_blob("big", chunks(), limit=1024 * 1024)
        assert await s.blob_size("big") is None
        await s.delete_blob("file-1")
        assert await s.blob_size("file-1") is None
        with pytest.raises(KeyError):
            await s.read_blob_bytes("file-1")
        await s.close()

    run(go())


def test_counters_sum_per_bucket(make_store):
    async def go():
        s = await make_store()
        await s.add_counters("usage", [CounterRow("gpt-4o", 60, {"input": 10, "requests": 1}),
                                       CounterRow("gpt-4o", 120, {"input": 5})])
        await s.add_counters("usage", [CounterRow("gpt-4o", 60, {"input": 7, "requests": 1})])
        rows = {(r.key, r.ts): r.values for r in await s.counters("usage", 0, 1000)}
        assert rows == {("gpt-4o", 60): {"input": 17, "requests": 2}, ("gpt-4o", 120): {"input": 5}}
        assert [r.ts for r in await s.counters("usage", 61, 1000)] == [120]
        assert await s.counters("other", 0, 1000) == []
        await s.close()

    run(go())


def test_leases_are_exclusive_until_released(make_store):
    async def go():
        s = await make_store()
        assert await s.claim("job:1", "a", 30)
        assert not await s.claim("job:1", "b", 30)
        assert await s.claim("job:1", "a", 30)  # renew
        await s.release("job:1", "b")  # not b's: no effect
        assert not await s.claim("job:1", "b", 30)
        await s.release("job:1", "a")
        assert await s.claim("job:1", "b", 0.05)
        await asyncio.sleep(0.1)  # let a short lease lapse (the expiry itself is under test)
        assert await s.claim("job:1", "a", 30)
        await s.close()

    run(go())


def test_data_survives_reopening(make_store):
    if make_store.backend == "memory":
        pytest.skip("the memory store is explicitly not durable")

    async def go():
        s = await make_store()
        await s.put("file", {"id": "keep"})
        await s.write_blob("keep", b"payload")
        await s.add_counters("usage", [CounterRow("k", 0, {"n": 2})])
        await s.close()
        s = await make_store()
        assert await s.get("file", "keep") == {"id": "keep"}
        assert await s.read_blob_bytes("keep") == b"payload"
        assert (await s.counters("usage", 0, 1))[0].values == {"n": 2}
        await s.close()

    run(go())


def test_a_lease_can_be_taken_over_from_a_named_dead_holder(make_store):
    async def go():
        s = await make_store()
        assert await s.claim("job:2", "host:1:aa", 30)
        assert await s.lease_holder("job:2") == "host:1:aa"
        assert not await s.claim("job:2", "host:2:bb", 30, takeover="host:9:zz")  # not the holder
        assert await s.claim("job:2", "host:2:bb", 30, takeover="host:1:aa")
        assert await s.lease_holder("job:2") == "host:2:bb"
        await s.release("job:2", "host:2:bb")
        assert await s.lease_holder("job:2") is None
        await s.close()

    run(go())
