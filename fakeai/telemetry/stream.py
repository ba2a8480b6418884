"""The ``/metrics/stream`` fan-out: per client a subscription, a snapshot, then merge-patch deltas.

Each client runs three small tasks: a producer (one message per interval, or a new snapshot when
the client re-subscribes), a sender (one message at a time to the socket) and a receiver (the
client's subscribe and ping messages). Between producer and sender sits a queue of at most
``QUEUE`` messages: a client that reads too slowly for it, or whose socket takes nothing for
``SEND_TIMEOUT`` seconds, is closed with 1013 and forgotten, so a slow client costs a bounded
amount of memory. Documents are built once per (subscription, moment) and shared by the clients
that subscribe alike (``CACHE_S``). Protocol: docs/metrics-api.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import orjson

log = logging.getLogger("fakeai")

QUEUE = 8
SEND_TIMEOUT = 10.0
MAX_CLIENTS = 64
CACHE_S = 0.05
MIN_INTERVAL, MAX_INTERVAL, DEFAULT_INTERVAL = 0.1, 60.0, 1.0
SLOW = 1013  # "try again later"
_MISSING = object()


class BadSubscription(ValueError):
    pass


class _Slow(Exception):
    pass


def merge_patch(old: dict, new: dict) -> dict:
    """The JSON Merge Patch (RFC 7386) that turns ``old`` into ``new`` (``None`` members of
    ``new`` read as absent)."""
    patch = {}
    for k, v in new.items():
        o = old.get(k, _MISSING)
        if isinstance(v, dict) and isinstance(o, dict):
            d = merge_patch(o, v)
            if d:
                patch[k] = d
        elif v is None:
            if o is not _MISSING and o is not None:
                patch[k] = None
        elif o is _MISSING or type(o) is not type(v) or o != v:
            patch[k] = v
    for k, o in old.items():
        if k not in new and o is not None:
            patch[k] = None
    return patch


class Subscription:
    __slots__ = ("families", "interval", "models")

    def __init__(self, families=None, models=None, interval: float = DEFAULT_INTERVAL) -> None:
        self.families, self.models, self.interval = families, models, interval

    def update(self, families=_MISSING, models=_MISSING, interval=_MISSING) -> Subscription:
        """A new subscription with the given members changed (checked; BadSubscription)."""
        from .overview import UnknownFamily, parse_families

        out = Subscription(self.families, self.models, self.interval)
        if families is not _MISSING:
            if families is not None and not isinstance(families, (str, list)):
                raise BadSubscription("families must be a list of family names (or null for all)")
            try:
                out.families = parse_families(families)
            except UnknownFamily as e:
                raise BadSubscription(str(e)) from None
        if models is not _MISSING:
            if isinstance(models, str):
                models = [m for m in models.split(",") if m.strip()]
            if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
                raise BadSubscription("models must be a list of model ids (or null for all)")
            out.models = tuple(m.strip() for m in models) or None if models is not None else None
        if interval is not _MISSING:
            if isinstance(interval, str):
                try:
                    interval = float(interval)
                except ValueError:
                    raise BadSubscription("interval must be a number of seconds") from None
            if isinstance(interval, bool) or not isinstance(interval, (int, float)) or \
                    not MIN_INTERVAL <= interval <= MAX_INTERVAL:
                raise BadSubscription(f"interval must be a number of seconds from {MIN_INTERVAL} to {MAX_INTERVAL}")
            out.interval = float(interval)
        return out


class _Client:
    def __init__(self, hub: StreamHub, send, sub: Subscription) -> None:
        self.hub, self.send, self.sub = hub, send, sub
        self.queue: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.resubscribed = asyncio.Event()
        self.last: dict | None = None
        self.seq = 0

    def push(self, message: dict) -> None:
        if len(self.queue) >= QUEUE:
            raise _Slow
        message["seq"] = self.seq
        self.seq += 1
        self.queue.append(orjson.dumps(message))
        self.ready.set()

    async def produce(self) -> None:
        while True:
            sub = self.sub
            doc = self.hub.document(sub.families, sub.models)
            if self.last is None:
                self.push({"type": "snapshot", "seq": 0, "time": doc["time"], "interval": sub.interval,
                           "families": list(sub.families) if sub.families else None,
                           "models": list(sub.models) if sub.models else None, "data": doc})
            else:
                self.push({"type": "delta", "seq": 0, "time": doc["time"], "patch": merge_patch(self.last, doc)})
            self.last = doc
            try:
                await asyncio.wait_for(self.resubscribed.wait(), sub.interval)
            except TimeoutError:
                pass
            self.resubscribed.clear()

    async def deliver(self) -> None:
        while True:
            while not self.queue:
                self.ready.clear()
                await self.ready.wait()
            data = self.queue.popleft()
            try:
                await asyncio.wait_for(self.send(data.decode()), SEND_TIMEOUT)
            except TimeoutError:
                raise _Slow from None

    async def listen(self, receive) -> None:
        while True:
            text = await receive()
            if text is None:
                return
            try:
                msg = orjson.loads(text)
            except orjson.JSONDecodeError:
                self.push({"type": "error", "code": "invalid_json", "message": "Messages must be JSON objects."})
                continue
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "ping":
                self.push({"type": "pong"})
            elif kind == "subscribe":
                try:
                    self.sub = self.sub.update(**{k: msg[k] for k in ("families", "models", "interval") if k in msg})
                except BadSubscription as e:
                    self.push({"type": "error", "code": "invalid_subscription", "message": str(e)})
                    continue
                self.last = None
                self.resubscribed.set()
            else:
                self.push({"type": "error", "code": "unknown_message",
                           "message": "Unknown message type: send 'subscribe' or 'ping'."})


class StreamHub:
    def __init__(self, overview) -> None:
        self.overview = overview
        self.clients: set[_Client] = set()
        self.dropped = 0
        self._cache: dict[tuple, tuple[float, dict]] = {}
        self._closing: list = []

    def document(self, families, models) -> dict:
        """The document for a subscription, shared by clients asking for it within CACHE_S."""
        key = (families, models)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] <= CACHE_S:
            return hit[1]
        doc = self.overview.document(families, models)
        if len(self._cache) > 32:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] <= CACHE_S}
        self._cache[key] = (now, doc)
        return doc

    async def serve(self, send, receive, close, params: dict) -> None:
        """Serve one accepted connection until it leaves or is dropped.

        ``send(text)``, ``receive() -> text | None`` (None: gone), ``close(code, reason)``;
        ``params``: the query's families, models and interval (strings)."""
        try:
            sub = Subscription().update(**params)
        except BadSubscription as e:
            await send(orjson.dumps({"type": "error", "seq": 0, "code": "invalid_subscription",
                                     "message": str(e)}).decode())
            await close(1008, "invalid subscription")
            return
        if len(self.clients) >= MAX_CLIENTS:
            self.dropped += 1
            await close(SLOW, "too many metrics stream clients")
            return
        client = _Client(self, send, sub)
        self.clients.add(client)
        tasks = [asyncio.ensure_future(c) for c in (client.produce(), client.deliver(), client.listen(receive))]
        self._closing.append(tasks)
        slow = False
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if not t.cancelled() and isinstance(t.exception(), _Slow):
                    slow = True
                elif not t.cancelled() and t.exception() is not None:
                    log.warning("metrics stream client failed: %r", t.exception())
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.clients.discard(client)
            self._closing.remove(tasks)
            client.queue.clear()
        if slow:
            self.dropped += 1
            try:
                await asyncio.wait_for(close(SLOW, "slow consumer"), 1.0)
            except Exception:  # noqa: BLE001, S110 (stuck or gone: the server drops it when we return)
                pass

    async def close_all(self) -> None:
        for tasks in list(self._closing):
            for t in tasks:
                t.cancel()
