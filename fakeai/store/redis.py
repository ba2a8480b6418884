"""The shared store: every replica on every host reads and writes one Redis.

Layout (all keys under ``fakeai:``):

* ``d:<kind>`` hash id -> JSON document; ``o:<kind>:<parent>`` sorted set of ids by
  insertion sequence (``seq`` counter); ``p:<kind>`` hash id -> parent.
* ``b:<key>`` list of content chunks, ``bm`` hash key -> size:md5 (written under a
  temporary name and renamed, so readers see whole blobs). ``bw:<key>`` set of the
  temporary names being written for a key, so that ``delete_blob`` removes the partial
  blob of a writer that died; both expire an hour after the last chunk in any case.
* ``c:<kind>:<ts>:<key>`` hash field -> sum; ``ci:<kind>`` sorted set of "<ts>|<key>" by ts.
* ``l:<name>`` lease value owner, with a TTL.

Multi-key writes run as Lua scripts or MULTI transactions, so they are atomic.
Durability is Redis's: run it with ``appendonly yes`` and ``appendfsync always``
(or ``everysec``, trading up to a second) for acknowledged writes to survive.
"""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable

import orjson

from .base import BlobInfo, CounterRow, Doc, Match, Meter, Page, Store, StoreError

P = "fakeai:"
CONNECT_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 5.0
TMP_TTL_MS = 3_600_000  # a blob being written lives this long after its last chunk unless completed

_PUT = """
local d, p, o_prefix, seqkey = KEYS[1], KEYS[2], ARGV[4], KEYS[3]
local id, body, parent = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HEXISTS', d, id) == 0 then
  local seq = redis.call('INCR', seqkey)
  redis.call('ZADD', o_prefix .. parent, seq, id)
  redis.call('HSET', p, id, parent)
end
redis.call('HSET', d, id, body)
return 1
"""

_DELETE = """
local d, p, o_prefix, id = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local parent = redis.call('HGET', p, id)
if not parent then return 0 end
redis.call('ZREM', o_prefix .. parent, id)
redis.call('HDEL', p, id)
redis.call('HDEL', d, id)
return 1
"""

_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and cur ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisStore(Store):
    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self._r = None

    async def open(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
        from redis.exceptions import ConnectionError as LostConnection

        self._errors = (aioredis.RedisError, OSError)
        # An outage surfaces within seconds as StoreError (503), never as a hang: bounded
        # connects and replies; a dropped connection (a pooled one after a Redis restart) is
        # redialled twice within ~0.2 s, a timeout is not retried (a hung server stays hung).
        self._r = aioredis.from_url(self.url, decode_responses=False, health_check_interval=10,
                                    socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=REPLY_TIMEOUT_S,
                                    retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), 2,
                                                supported_errors=(LostConnection,)))
        try:
            await self._r.ping()
        except self._errors as e:
            raise StoreError(f"cannot reach redis at {self.url}: {e}") from e
        self._put = self._r.register_script(_PUT)
        self._delete = self._r.register_script(_DELETE)
        self._claim = self._r.register_script(_CLAIM)
        self._release = self._r.register_script(_RELEASE)

    async def close(self) -> None:
        if self._r is not None:
            await self._r.aclose()
            self._r = None

    async def _call(self, coro):
        try:
            return await coro
        except self._errors as e:
            raise StoreError(f"redis: {e}") from e

    # -- documents --------------------------------------------------------------------
    async def put(self, kind: str, doc: Doc, parent: str = "") -> None:
        await self._call(self._put(keys=[f"{P}d:{kind}", f"{P}p:{kind}", f"{P}seq"],
                                   args=[doc["id"], orjson.dumps(doc), parent, f"{P}o:{kind}:"]))

    async def get(self, kind: str, id: str) -> Doc | None:
        raw = await self._call(self._r.hget(f"{P}d:{kind}", id))
        return orjson.loads(raw) if raw else None

    async def delete(self, kind: str, id: str) -> bool:
        return bool(await self._call(self._delete(keys=[f"{P}d:{kind}", f"{P}p:{kind}"],
                                                  args=[f"{P}o:{kind}:", id])))

    async def update(self, kind: str, id: str, change: Callable[[Doc], Doc | None]) -> Doc | None:
        from redis.exceptions import WatchError

        key = f"{P}d:{kind}"
        while True:
            try:
                async with self._r.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, id)
                    if raw is None:
                        return None
                    doc = orjson.loads(raw)
                    new = change(copy.deepcopy(doc))
                    if new is None:
                        return doc
                    pipe.multi()
                    pipe.hset(key, id, orjson.dumps(new))
                    await pipe.execute()
                    return new
            except WatchError:
                continue
            except self._errors as e:
                raise StoreError(f"redis: {e}") from e

    async def page(self, kind: str, *, parent: str = "", after: str | None = None,
                   before: str | None = None, limit: int = 20, order: str = "desc",
                   match: Match | None = None) -> Page:
        r = self._r
        zkey = f"{P}o:{kind}:{parent}"
        cursor = after or before
        toward_start = before is not None and after is None
        pos = None
        if cursor is not None:
            pos = await self._call(r.zscore(zkey, cursor))
            if pos is None:
                return Page()
        descending = (order == "desc") != toward_start
        items: list[Doc] = []
        batch = max(limit + 1, 64 if match else limit + 1)
        while len(items) <= limit:
            if descending:
                hi = "+inf" if pos is None else f"({pos}"
                ids = await self._call(r.zrevrangebyscore(zkey, hi, "-inf", start=0, num=batch, withscores=True))
            else:
                lo = "-inf" if pos is None else f"({pos}"
                ids = await self._call(r.zrangebyscore(zkey, lo, "+inf", start=0, num=batch, withscores=True))
            if not ids:
                break
            bodies = await self._call(r.hmget(f"{P}d:{kind}", [i for i, _ in ids]))
            for body in bodies:
                if body is None:
                    continue
                doc = orjson.loads(body)
                if match is None or match(doc):
                    items.append(doc)
                    if len(items) > limit:
                        break
            if len(ids) < batch:
                break
            pos = ids[-1][1]
        has_more = len(items) > limit
        items = items[:limit]
        if toward_start:
            items.reverse()
        return Page(items, has_more)

    # -- blobs ------------------------------------------------------------------------
    async def write_blob(self, key: str, chunks: AsyncIterable[bytes] | bytes,
                         limit: int | None = None) -> BlobInfo:
        r = self._r
        tmp, writing = f"{P}b:{key}.tmp.{os.urandom(6).hex()}", f"{P}bw:{key}"
        meter = Meter(limit)
        try:
            async for chunk in meter.chunks(chunks):
                async with r.pipeline(transaction=False) as pipe:  # one round trip
                    pipe.rpush(tmp, chunk)
                    pipe.sadd(writing, tmp)
                    pipe.pexpire(tmp, TMP_TTL_MS)  # (renaming keeps an expiry: PERSIST below)
                    pipe.pexpire(writing, TMP_TTL_MS)
                    await self._call(pipe.execute())
            async with r.pipeline(transaction=True) as pipe:
                info = meter.info
                if info.size:
                    pipe.rename(tmp, f"{P}b:{key}")
                    pipe.persist(f"{P}b:{key}")
                else:
                    pipe.delete(f"{P}b:{key}")
                pipe.hset(f"{P}bm", key, f"{info.size}:{info.md5}")
                pipe.srem(writing, tmp)
                await self._call(pipe.execute())
        except BaseException:
            try:
                async with r.pipeline(transaction=True) as pipe:
                    pipe.delete(tmp)
                    pipe.srem(writing, tmp)
                    await pipe.execute()
            except self._errors:  # Redis is gone: the expiry removes it
                pass
            raise
        return info

    async def read_blob(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        r = self._r
        if not await self._call(r.hexists(f"{P}bm", key)):
            raise KeyError(key)
        i = 0
        while True:
            part = await self._call(r.lrange(f"{P}b:{key}", i, i + 7))
            if not part:
                return
            for chunk in part:
                yield chunk
            i += len(part)

    async def blob_size(self, key: str) -> int | None:
        meta = await self._call(self._r.hget(f"{P}bm", key))
        return None if meta is None else int(meta.split(b":")[0])

    async def delete_blob(self, key: str) -> None:
        partial = await self._call(self._r.smembers(f"{P}bw:{key}"))  # writes cut short
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(f"{P}b:{key}", f"{P}bw:{key}", *partial)
            pipe.hdel(f"{P}bm", key)
            await self._call(pipe.execute())

    # -- counters ---------------------------------------------------------------------
    async def add_counters(self, kind: str, rows: list[CounterRow]) -> None:
        if not rows:
            return
        async with self._r.pipeline(transaction=True) as pipe:
            for row in rows:
                h = f"{P}c:{kind}:{row.ts}:{row.key}"
                for f, v in row.values.items():
                    pipe.hincrbyfloat(h, f, v)
                pipe.zadd(f"{P}ci:{kind}", {f"{row.ts}|{row.key}": row.ts})
            await self._call(pipe.execute())

    async def counters(self, kind: str, start: int, end: int) -> list[CounterRow]:
        r = self._r
        members = await self._call(r.zrangebyscore(f"{P}ci:{kind}", start, f"({end}"))
        if not members:
            return []
        async with r.pipeline(transaction=False) as pipe:
            for m in members:
                ts, key = m.decode().split("|", 1)
                pipe.hgetall(f"{P}c:{kind}:{ts}:{key}")
            hashes = await self._call(pipe.execute())
        out = []
        for m, h in zip(members, hashes):
            ts, key = m.decode().split("|", 1)
            out.append(CounterRow(key, int(ts), {k.decode(): float(v) for k, v in h.items()}))
        return out

    # -- leases -----------------------------------------------------------------------
    async def claim(self, name: str, owner: str, ttl_s: float, takeover: str | None = None) -> bool:
        got = await self._call(self._claim(keys=[f"{P}l:{name}"],
                                           args=[owner, int(ttl_s * 1000), takeover or owner]))
        return bool(got)

    async def lease_holder(self, name: str) -> str | None:
        raw = await self._call(self._r.get(f"{P}l:{name}"))
        return raw.decode() if raw is not None else None

    async def release(self, name: str, owner: str) -> None:
        await self._call(self._release(keys=[f"{P}l:{name}"], args=[owner]))
