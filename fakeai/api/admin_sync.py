"""Run-time option changes (``PATCH /admin/config``) across the processes of one server.

With ``--workers N`` a PATCH reaches one process. That process writes the whole set
of run-time values to ``overrides.json`` in the run directory the processes share;
every process looks at the file's modification time every ``interval`` seconds and
applies what differs from its own values, exactly as the PATCH applied it. So a
change holds on every process within ``interval``. Changes are not kept beyond the
run: a restarted server starts from its configuration, as a single process does.
Secret options (``api_key``) are never written out: a PATCH of them holds in the
process it reached; keys for every process are made with ``POST /admin/keys``.
"""

from __future__ import annotations

import logging
import os

import orjson

from ..config.settings import secret_fields
from ..periodic import Periodic
from .admin import apply_changes

log = logging.getLogger("fakeai")
SYNC_S = 0.5


class OverrideSync:
    def __init__(self, state, run_dir: str, interval: float = SYNC_S) -> None:
        self.state = state
        self.path = os.path.join(run_dir, "overrides.json")
        self._seen: float | None = None
        self._rounds = Periodic(interval, self.poll, "run-time option sync")

    def publish(self, overrides: dict) -> None:
        secret = secret_fields()
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps({k: v for k, v in overrides.items() if k not in secret}))
        os.replace(tmp, self.path)
        self._seen = os.stat(self.path).st_mtime_ns  # this process has them already

    async def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    def poll(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._seen:
            return
        self._seen = mtime
        with open(self.path, "rb") as f:
            values = orjson.loads(f.read())
        own = self.state.overrides
        changed = {k: v for k, v in values.items() if k not in own or own[k] != v}  # (JSON: lists for tuples)
        if changed:
            try:
                apply_changes(self.state, changed, f"by process {os.getpid()}'s peer")
            except ValueError as e:
                log.error("could not apply another process's run-time change: %s", e)
