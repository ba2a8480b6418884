"""Usage accounting for the organization usage and costs API.

Routes call ``app.state.usage.record(kind, model, request=request, **fields)`` once
per served request. The call only adds into an in-memory table keyed by (kind,
minute, model, project, user, API key, batch, and the kind's own group fields such
as image size and source); a background task writes the table to the store's
counters every ``flush_ms`` (one ``add_counters`` per resolution: 1-minute,
1-hour and 1-day buckets, so a 31-day query reads 31 rows per group), and so does
every usage or costs read (``await flush()`` first) and the server's shutdown.

Durability window: usage recorded less than ``flush_ms`` ago lives only in memory
until the next flush; a crash (SIGKILL, power loss) loses at most that much. A
clean shutdown loses nothing. A flush that fails (store down) keeps its rows and
retries them with the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson

from ..store import CounterRow, Store, StoreError
from .keyids import DEFAULT_PROJECT, KeyIds

log = logging.getLogger("fakeai.usage")

KINDS = ("completions", "embeddings", "moderations", "images", "audio_speeches", "audio_transcriptions",
         "vector_stores", "code_interpreter_sessions", "file_search_calls", "web_search_calls")
# the field each served request increments (the others count what their callers pass)
_REQUEST_FIELD = {k: "num_model_requests" for k in
                  ("completions", "embeddings", "moderations", "images", "audio_speeches",
                   "audio_transcriptions", "web_search_calls")}
# keyword arguments of ``record`` that are group fields, not quantities
GROUP_FIELDS = frozenset({"size", "source", "quality", "service_tier", "vector_store_id", "context_level"})
RESOLUTIONS = (("1m", 60), ("1h", 3600), ("1d", 86400))
COUNTER_KIND = "usage."  # + resolution name

KeysUsed = dict[str, tuple[str | None, int]]  # key id -> (redacted key or None, last used)


def group_key(kind: str, model: str, project: str | None, user: str | None, key: str | None,
              batch: bool, extra: tuple[tuple[str, str], ...]) -> str:
    """The counter key of one group: ``kind:{json}`` (absent fields are null)."""
    g = {"model": model or None, "project_id": project, "user_id": user, "api_key_id": key, "batch": batch}
    g.update(extra)
    return kind + ":" + orjson.dumps(g).decode()


def parse_key(key: str) -> tuple[str, dict]:
    kind, _, body = key.partition(":")
    return kind, orjson.loads(body)


class UsageRecorder:
    def __init__(self, store: Store, flush_ms: int = 1000, clock: Callable[[], float] = time.time,
                 keys: KeyIds | None = None) -> None:
        self.store = store
        self.flush_s = flush_ms / 1000.0
        self.keys = keys or KeyIds()
        self._clock = clock
        self._table: dict[tuple, dict[str, float]] = {}
        self._pending: dict[str, dict[tuple[str, int], dict[str, float]]] = {r: {} for r, _ in RESOLUTIONS}
        self._used: dict[str, int] = {}
        self._lock: asyncio.Lock | None = None
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.on_keys_used: Callable[[KeysUsed], Awaitable[None]] | None = None

    # -- lifecycle --------------------------------------------------------------------
    async def open(self) -> None:
        """Load the key-id secret and start the periodic flush."""
        await self.keys.open(self.store)
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def close(self) -> None:
        """Stop the periodic flush after a last one (never cut short: see ``_flush_forever``)."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    async def _flush_forever(self) -> None:
        # Stopped by an event, not by cancellation: a write cancelled half way would leave
        # it unknown whether its rows were stored, and retrying them could count them twice.
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), self.flush_s)
            except TimeoutError:
                pass
            try:
                await self.flush()
            except StoreError as e:
                log.warning("usage flush failed (retried with the next): %s", e)
            except Exception:  # keep flushing whatever one round hit
                log.exception("usage flush failed")

    # -- the hot path -----------------------------------------------------------------
    def record(self, kind: str, model: str, *, request=None, api_key_id: str | None = None,
               project_id: str | None = None, user_id: str | None = None, batch: bool = False,
               **fields: float | str | None) -> None:
        """Count one served request of ``kind`` (see ``KINDS``) for ``model``.

        Identity: from ``request`` (its ASGI scope: the auth layer's ``api_key_id`` /
        ``project_id`` / ``user_id`` state, or the presented key; ``batch_id`` state marks
        a batch line); explicit arguments win; without a request the project defaults to
        the default project. ``fields``: OpenAI's bucket quantities
        (input_tokens, output_tokens, input_cached_tokens, input_audio_tokens,
        output_audio_tokens, input_image_tokens, output_image_tokens, images, characters,
        seconds, usage_bytes, num_sessions, num_requests) and group fields (size, source,
        quality, service_tier, vector_store_id, context_level). ``num_model_requests`` is
        counted here for the kinds that have it.
        """
        now = int(self._clock())
        if request is not None:
            kid, pid, uid, in_batch = self.keys.of(request.scope)
            api_key_id = api_key_id or kid
            project_id = project_id or pid
            user_id = user_id or uid
            batch = batch or in_batch
            if kid is not None:
                self._used[kid] = now
        elif project_id is None:  # work of no request (a background job): the default project
            project_id = DEFAULT_PROJECT
        groups = []
        quantities = []
        for f, v in fields.items():
            if f in GROUP_FIELDS:
                if v is not None:
                    groups.append((f, v))
            elif v:
                quantities.append((f, v))
        if len(groups) > 1:
            groups.sort()
        key = (kind, now // 60 * 60, model, project_id, user_id, api_key_id, batch, tuple(groups))
        acc = self._table.get(key)
        if acc is None:
            acc = self._table[key] = {}
        field = _REQUEST_FIELD.get(kind)
        if field is not None:
            acc[field] = acc.get(field, 0) + 1
        for f, v in quantities:
            acc[f] = acc.get(f, 0) + v

    def identity(self, request) -> tuple[str | None, str, str | None, bool]:
        """(api_key_id, project_id, user_id, batch) of a request, as ``record`` sees it."""
        return self.keys.of(request.scope)

    # -- flushing ---------------------------------------------------------------------
    async def flush(self) -> None:
        """Write everything recorded so far (plus any earlier failed rows) durably."""
        if self._lock is None:  # never opened (a unit test): flush inline
            self._lock = asyncio.Lock()
        async with self._lock:
            table, self._table = self._table, {}
            used, self._used = self._used, {}
            for (kind, minute, model, pid, uid, kid, batch, extra), values in table.items():
                ckey = group_key(kind, model, pid, uid, kid, batch, extra)
                for res, width in RESOLUTIONS:
                    acc = self._pending[res].setdefault((ckey, minute // width * width), {})
                    for f, v in values.items():
                        acc[f] = acc.get(f, 0) + v
            failed = None
            for res, _ in RESOLUTIONS:
                pending = self._pending[res]
                if not pending:
                    continue
                rows = [CounterRow(k, ts, v) for (k, ts), v in pending.items()]
                try:
                    await self.store.add_counters(COUNTER_KIND + res, rows)
                except StoreError as e:
                    failed = e
                    continue
                self._pending[res] = {}
            if used and self.on_keys_used is not None:
                try:
                    await self.on_keys_used({k: (self.keys.redacted(k), ts) for k, ts in used.items()})
                except StoreError as e:  # only last_used_at of a key is late
                    log.warning("could not note the API keys used: %s", e)
        if failed is not None:
            raise failed

    async def rows(self, resolution: str, start: int, end: int) -> list[tuple[str, dict, int, dict[str, float]]]:
        """Stored counters of one resolution with ``start <= ts < end``, flushed first:
        (kind, group fields, bucket start, values)."""
        await self.flush()
        out = []
        for row in await self.store.counters(COUNTER_KIND + resolution, start, end):
            kind, group = parse_key(row.key)
            out.append((kind, group, row.ts, row.values))
        return out
