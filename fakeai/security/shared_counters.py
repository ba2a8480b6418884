"""Rate-limit counters shared by the processes of one server (``--workers N``) without Redis.

A SQLite file in the run directory the processes share, one row per counter:
``(key, value, expires)``. Each update is one ``BEGIN IMMEDIATE`` transaction, so
the processes count exactly (SQLite's write lock serialises them), and nothing is
fsynced (``synchronous=OFF``): the counters live only as long as the run, like the
in-process ones. It has the same interface as ``ratelimit._Memory`` (``hit`` plus
the async ``incr``/``get``/``get_expiry`` of a ``limits`` storage); an update costs
tens of microseconds rather than one.
"""

from __future__ import annotations

import sqlite3
import time

SWEEP_S = 10.0


class SharedCounters:
    def __init__(self, path: str) -> None:
        self._db = db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, "
                   "expires REAL NOT NULL) WITHOUT ROWID")
        self._sweep_at = time.monotonic() + SWEEP_S

    def hit(self, key: str, expiry: int, amount: int) -> int:
        """Add ``amount`` to the counter (a new window if its last one is over); the new count."""
        db, now = self._db, time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
            if row is None or row[1] <= now:
                value, expires = amount, now + expiry
            else:
                value, expires = row[0] + amount, row[1]
            db.execute("INSERT OR REPLACE INTO counters (key, value, expires) VALUES (?, ?, ?)",
                       (key, value, expires))
            if time.monotonic() >= self._sweep_at:
                db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
                self._sweep_at = time.monotonic() + SWEEP_S
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return value

    async def incr(self, key: str, expiry: int, amount: int) -> int:
        return self.hit(key, expiry, amount)

    async def get(self, key: str) -> int:
        row = self._db.execute("SELECT value, expires FROM counters WHERE key = ?", (key,)).fetchone()
        return row[0] if row is not None and row[1] > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        row = self._db.execute("SELECT expires FROM counters WHERE key = ?", (key,)).fetchone()
        return row[0] if row is not None else time.time()

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM counters WHERE expires > ?", (time.time(),)).fetchone()[0]
