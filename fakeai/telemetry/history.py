"""The metrics history: a bounded ring of serialized snapshots, optionally appended to a JSONL file.

Every ``interval`` seconds an entry (the /metrics/json document restricted to ``FAMILIES``) is
serialized once and kept as bytes; the ring holds the last ``length`` entries, so memory is bounded
by length x entry size whatever the traffic. With a file, each entry is also one line of it; past
``ROTATE_BYTES`` the file moves to ``FILE.1`` and a new one starts. Reading joins stored bytes
without parsing them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque

import orjson

log = logging.getLogger("fakeai")

FAMILIES = ("requests", "tokens", "recent", "errors", "streaming", "throughput", "cluster", "gpus", "faults",
            "rate_limits")
ROTATE_BYTES = 64 * 1024 * 1024


class History:
    def __init__(self, overview, interval: float, length: int, path: str | None) -> None:
        self.overview = overview
        self.interval = interval
        self.length = length
        self.path = path
        self._ring: deque[tuple[float, bytes]] = deque(maxlen=length)
        self._task: asyncio.Task | None = None
        self._file = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def __len__(self) -> int:
        return len(self._ring)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._file is not None:
            self._file.close()
            self._file = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                self.take()
            except Exception:  # one failed entry must not end the history
                log.exception("metrics history: could not take an entry")
            due += self.interval
            now = loop.time()
            if due < now:  # fell behind (a long pause): start again from now
                due = now + self.interval
            await asyncio.sleep(due - now)

    def take(self) -> bytes:
        """Take one entry now (serialized), keep it, and write it to the file if there is one."""
        doc = self.overview.document(FAMILIES)
        data = orjson.dumps(doc)
        self._ring.append((doc["time"], data))
        if self.path:
            self._write(data)
        return data

    def _write(self, data: bytes) -> None:
        try:
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115 (kept open between entries)
            self._file.write(data + b"\n")
            self._file.flush()
            if self._file.tell() >= ROTATE_BYTES:
                self._file.close()
                self._file = None
                os.replace(self.path, self.path + ".1")
        except OSError as e:
            log.warning("metrics history: cannot write %s: %s", self.path, e)
            if self._file is not None:
                self._file.close()
                self._file = None

    def entries(self, since: float | None = None, limit: int | None = None) -> list[bytes]:
        """Serialized entries with ``time > since``, oldest first; ``limit`` keeps the newest."""
        out = [data for t, data in self._ring if since is None or t > since]
        if limit is not None:
            out = out[-limit:] if limit > 0 else []
        return out
