"""The persistence interface every stored resource goes through.

Three kinds of data, one interface:

* **documents**: JSON objects of a ``kind`` ("file", "batch", "response", ...), keyed by
  their ``id`` and optionally grouped under a ``parent`` (the items of a conversation,
  the files of a vector store). Listing is in insertion order, paged with OpenAI's
  ``after``/``before`` cursors.
* **blobs**: byte contents (uploaded files, batch outputs), written from a stream and
  read back as a stream, never held whole in memory by the store.
* **counters**: numeric fields summed per (kind, key, time bucket), for usage.

Plus **leases**, so that exactly one process runs a background job (a batch, a
fine-tuning job) and another takes it over when the holder dies.

Every write returns only once it is durable (committed and fsynced for SQLite,
acknowledged for Redis): callers acknowledge a client after ``await``-ing it.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]
Match = Callable[[Doc], bool]


class StoreError(Exception):
    """The backing store failed (disk full, Redis gone): the request gets a 503."""


@dataclass(slots=True)
class Page:
    items: list[Doc] = field(default_factory=list)
    has_more: bool = False

    @property
    def first_id(self) -> str | None:
        return self.items[0]["id"] if self.items else None

    @property
    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None


@dataclass(slots=True)
class BlobInfo:
    size: int
    md5: str  # hex digest of the content


@dataclass(slots=True)
class CounterRow:
    key: str
    ts: int  # bucket start, unix seconds
    values: dict[str, float]


class Store(ABC):
    """Documents, blobs, counters and leases. Subclasses: SQLite (with a memory
    variant) and Redis. All methods are coroutines and safe to call concurrently."""

    name: str = "?"

    async def open(self) -> None:
        """Connect / create the schema. Called once at startup."""

    async def close(self) -> None:
        """Flush and release resources."""

    # -- documents ------------------------------------------------------------------
    @abstractmethod
    async def put(self, kind: str, doc: Doc, parent: str = "") -> None:
        """Insert ``doc`` (keyed by ``doc["id"]``) or replace it, keeping its list position."""

    @abstractmethod
    async def get(self, kind: str, id: str) -> Doc | None: ...

    @abstractmethod
    async def delete(self, kind: str, id: str) -> bool:
        """Remove a document; True if it existed."""

    @abstractmethod
    async def update(self, kind: str, id: str, change: Callable[[Doc], Doc | None]) -> Doc | None:
        """Atomically read, change and write one document (optimistic or locked, even
        across processes). ``change`` gets a copy and returns the new document, or
        None to leave it as it is. Returns the stored document, None if missing."""

    @abstractmethod
    async def page(self, kind: str, *, parent: str = "", after: str | None = None,
                   before: str | None = None, limit: int = 20, order: str = "desc",
                   match: Match | None = None) -> Page:
        """One page in insertion order (``order`` "asc" or "desc"), starting after the
        document ``after`` (or ending before ``before``), keeping those ``match`` accepts."""

    async def scan(self, kind: str, *, parent: str = "", match: Match | None = None) -> AsyncIterator[Doc]:
        """Every document of a kind in insertion order (for startup recovery and totals)."""
        after = None
        while True:
            page = await self.page(kind, parent=parent, after=after, limit=200, order="asc", match=match)
            for doc in page.items:
                yield doc
            if not page.has_more:
                return
            after = page.last_id

    async def count(self, kind: str, *, parent: str = "", match: Match | None = None) -> int:
        n = 0
        async for _ in self.scan(kind, parent=parent, match=match):
            n += 1
        return n

    # -- blobs ----------------------------------------------------------------------
    @abstractmethod
    async def write_blob(self, key: str, chunks: AsyncIterable[bytes] | bytes,
                         limit: int | None = None) -> BlobInfo:
        """Store a content stream under ``key`` (replacing any). Raises ``BlobTooLarge``
        past ``limit`` bytes, leaving nothing behind."""

    @abstractmethod
    def read_blob(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream a blob's bytes; raises KeyError if missing (before the first chunk)."""

    @abstractmethod
    async def blob_size(self, key: str) -> int | None: ...

    @abstractmethod
    async def delete_blob(self, key: str) -> None: ...

    async def read_blob_bytes(self, key: str) -> bytes:
        return b"".join([c async for c in self.read_blob(key)])

    # -- counters -------------------------------------------------------------------
    @abstractmethod
    async def add_counters(self, kind: str, rows: list[CounterRow]) -> None:
        """Add each row's values to the stored sums of (kind, key, ts), in one durable write."""

    @abstractmethod
    async def counters(self, kind: str, start: int, end: int) -> list[CounterRow]:
        """All rows of ``kind`` with ``start <= ts < end``."""

    # -- leases ---------------------------------------------------------------------
    @abstractmethod
    async def claim(self, name: str, owner: str, ttl_s: float, takeover: str | None = None) -> bool:
        """Take or renew the lease ``name`` for ``owner`` if it is free, expired, already
        ``owner``'s, or held by ``takeover`` (a holder known to be dead). True when
        ``owner`` holds it for ``ttl_s`` more seconds."""

    @abstractmethod
    async def lease_holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` now (None if it is free or expired)."""

    @abstractmethod
    async def release(self, name: str, owner: str) -> None: ...


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"content exceeds {limit} bytes")
        self.limit = limit


class Meter:
    """Counts and hashes a blob's content as it streams past, refusing it past ``limit``."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)

    async def chunks(self, data: AsyncIterable[bytes] | bytes) -> AsyncIterator[bytes]:
        """The non-empty chunks of ``data``, each counted; raises ``BlobTooLarge`` past the limit."""
        source = _once(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        async for chunk in source:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.limit is not None and self.size > self.limit:
                raise BlobTooLarge(self.limit)
            self._md5.update(chunk)
            yield chunk

    @property
    def info(self) -> BlobInfo:
        return BlobInfo(self.size, self._md5.hexdigest())


async def _once(data) -> AsyncIterator[bytes]:
    yield bytes(data)
