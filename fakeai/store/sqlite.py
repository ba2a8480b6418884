"""The embedded store: one SQLite database plus a directory of blob files.

SQLite runs in WAL mode with ``synchronous=FULL``: a write returns after its
commit is fsynced, so a crash (even SIGKILL or power loss) loses nothing that
was acknowledged. All statements run on one dedicated thread with one
connection; several server processes may share the same database file
(``BEGIN IMMEDIATE`` serialises writers across processes).

Blobs are files under ``<data_dir>/blobs``: written to a temporary name,
fsynced, then renamed into place, so a reader sees a whole blob or none.
The ``memory`` store is the same code over ``:memory:`` and a dict of blobs.
"""

from __future__ import annotations

import asyncio
import copy
import os
import sqlite3
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from .base import BlobInfo, CounterRow, Doc, Match, Meter, Page, Store, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, id TEXT NOT NULL, parent TEXT NOT NULL, body BLOB NOT NULL,
    UNIQUE (kind, id));
CREATE INDEX IF NOT EXISTS docs_order ON docs (kind, parent, seq);
CREATE TABLE IF NOT EXISTS counters (
    kind TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL, field TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (kind, ts, key, field));
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
"""


class SQLiteStore(Store):
    def __init__(self, data_dir: str | None) -> None:
        """``data_dir`` None: everything in memory (the ``memory`` store)."""
        self.name = "sqlite" if data_dir else "memory"
        self.dir = Path(data_dir).expanduser() if data_dir else None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fakeai-store")
        self._db: sqlite3.Connection | None = None
        self._mem_blobs: dict[str, bytes] = {}

    # -- plumbing ---------------------------------------------------------------------
    async def _run(self, fn: Callable, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except sqlite3.Error as e:
            raise StoreError(f"store: {e}") from e
        except OSError as e:  # disk full, I/O error (a missing blob is the caller's KeyError)
            if isinstance(e, FileNotFoundError):
                raise
            raise StoreError(f"store: {e}") from e

    def _connect(self) -> None:
        if self.dir is not None:
            (self.dir / "blobs").mkdir(parents=True, exist_ok=True)
            _remove_dead_writers_files(self.dir / "blobs")
            path = str(self.dir / "fakeai.sqlite3")
        else:
            path = ":memory:"
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(_SCHEMA)
        self._db = db

    async def open(self) -> None:
        await self._run(self._connect)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    def _tx(self, fn: Callable[[sqlite3.Connection], object]):
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            out = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return out

    # -- documents --------------------------------------------------------------------
    async def put(self, kind: str, doc: Doc, parent: str = "") -> None:
        body = orjson.dumps(doc)
        await self._run(self._tx, lambda db: db.execute(
            "INSERT INTO docs (kind, id, parent, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
            (kind, doc["id"], parent, body)))

    async def get(self, kind: str, id: str) -> Doc | None:
        row = await self._run(lambda: self._db.execute(
            "SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, id)).fetchone())
        return orjson.loads(row[0]) if row else None

    async def delete(self, kind: str, id: str) -> bool:
        cur = await self._run(self._tx, lambda db: db.execute(
            "DELETE FROM docs WHERE kind = ? AND id = ?", (kind, id)))
        return cur.rowcount > 0

    async def update(self, kind: str, id: str, change: Callable[[Doc], Doc | None]) -> Doc | None:
        def tx(db: sqlite3.Connection):
            row = db.execute("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, id)).fetchone()
            if row is None:
                return None
            doc = orjson.loads(row[0])
            new = change(copy.deepcopy(doc))
            if new is None:
                return doc
            db.execute("UPDATE docs SET body = ? WHERE kind = ? AND id = ?", (orjson.dumps(new), kind, id))
            return new

        return await self._run(self._tx, tx)

    async def page(self, kind: str, *, parent: str = "", after: str | None = None,
                   before: str | None = None, limit: int = 20, order: str = "desc",
                   match: Match | None = None) -> Page:
        return await self._run(self._page, kind, parent, after, before, limit, order, match)

    def _page(self, kind, parent, after, before, limit, order, match) -> Page:
        db = self._db
        desc = order == "desc"
        cursor = after or before
        toward_start = before is not None and after is None  # "before": the page just ahead of it
        if cursor is not None:
            row = db.execute("SELECT seq FROM docs WHERE kind = ? AND id = ?", (kind, cursor)).fetchone()
            if row is None:
                return Page()
            pos = row[0]
        else:
            pos = None
        forward_desc = desc != toward_start  # scan direction in seq order
        op, direction = ("<", "DESC") if forward_desc else (">", "ASC")
        items: list[Doc] = []
        batch = max(limit + 1, 64 if match else limit + 1)
        while len(items) <= limit:
            if pos is None:
                sql = (f"SELECT seq, body FROM docs WHERE kind = ? AND parent = ? "
                       f"ORDER BY seq {direction} LIMIT ?")
                rows = db.execute(sql, (kind, parent, batch)).fetchall()
            else:
                sql = (f"SELECT seq, body FROM docs WHERE kind = ? AND parent = ? AND seq {op} ? "
                       f"ORDER BY seq {direction} LIMIT ?")
                rows = db.execute(sql, (kind, parent, pos, batch)).fetchall()
            for seq, body in rows:
                doc = orjson.loads(body)
                if match is None or match(doc):
                    items.append(doc)
                    if len(items) > limit:
                        break
            if len(rows) < batch:
                break
            pos = rows[-1][0]
        has_more = len(items) > limit
        items = items[:limit]
        if toward_start:
            items.reverse()
        return Page(items, has_more)

    # -- blobs ------------------------------------------------------------------------
    def _blob_path(self, key: str) -> Path:
        safe = key.replace("/", "_")
        return self.dir / "blobs" / safe[-2:] / safe

    async def write_blob(self, key: str, chunks: AsyncIterable[bytes] | bytes,
                         limit: int | None = None) -> BlobInfo:
        meter = Meter(limit)
        if self.dir is None:
            parts = [chunk async for chunk in meter.chunks(chunks)]
            self._mem_blobs[key] = b"".join(parts)
            return meter.info
        path = self._blob_path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        run = self._run
        await run(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        f = await run(open, tmp, "wb")
        try:
            async for chunk in meter.chunks(chunks):
                await run(f.write, chunk)
            await run(_sync_close, f)
            await run(_replace_durably, tmp, path)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return meter.info

    async def read_blob(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        if self.dir is None:
            data = self._mem_blobs[key]
            for i in range(0, len(data), chunk_size):
                yield data[i:i + chunk_size]
            return
        try:
            f = await self._run(open, self._blob_path(key), "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        try:
            while chunk := await self._run(f.read, chunk_size):
                yield chunk
        finally:
            f.close()

    async def blob_size(self, key: str) -> int | None:
        if self.dir is None:
            data = self._mem_blobs.get(key)
            return None if data is None else len(data)
        try:
            return (await self._run(os.stat, self._blob_path(key))).st_size
        except FileNotFoundError:
            return None

    async def delete_blob(self, key: str) -> None:
        if self.dir is None:
            self._mem_blobs.pop(key, None)
        else:
            await self._run(lambda: self._blob_path(key).unlink(missing_ok=True))

    # -- counters ---------------------------------------------------------------------
    async def add_counters(self, kind: str, rows: list[CounterRow]) -> None:
        params = [(kind, r.key, r.ts, f, v) for r in rows for f, v in r.values.items()]
        if params:
            await self._run(self._tx, lambda db: db.executemany(
                "INSERT INTO counters (kind, key, ts, field, value) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, ts, key, field) DO UPDATE SET value = value + excluded.value", params))

    async def counters(self, kind: str, start: int, end: int) -> list[CounterRow]:
        rows = await self._run(lambda: self._db.execute(
            "SELECT key, ts, field, value FROM counters WHERE kind = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts, key", (kind, start, end)).fetchall())
        out: dict[tuple[str, int], CounterRow] = {}
        for key, ts, f, v in rows:
            row = out.get((key, ts))
            if row is None:
                row = out[(key, ts)] = CounterRow(key, ts, {})
            row.values[f] = v
        return list(out.values())

    # -- leases -----------------------------------------------------------------------
    async def claim(self, name: str, owner: str, ttl_s: float, takeover: str | None = None) -> bool:
        def tx(db: sqlite3.Connection) -> bool:
            now = time.time()
            row = db.execute("SELECT owner, until FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] not in (owner, takeover) and row[1] > now:
                return False
            db.execute("INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) "
                       "DO UPDATE SET owner = excluded.owner, until = excluded.until", (name, owner, now + ttl_s))
            return True

        return await self._run(self._tx, tx)

    async def lease_holder(self, name: str) -> str | None:
        row = await self._run(lambda: self._db.execute(
            "SELECT owner FROM leases WHERE name = ? AND until > ?", (name, time.time())).fetchone())
        return row[0] if row else None

    async def release(self, name: str, owner: str) -> None:
        await self._run(self._tx, lambda db: db.execute(
            "DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner)))


def _sync_close(f) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _replace_durably(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_dead_writers_files(blobs: Path) -> None:
    """Delete the temporary files of blob writes whose process died (``.<name>.<pid>.<ns>.tmp``):
    a crash mid-write leaves one; a live process sharing the directory keeps its own."""
    for tmp in blobs.glob("*/.*.tmp"):
        pid = tmp.name.rsplit(".", 3)[-3]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier process's number, reused: this one has written nothing yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
