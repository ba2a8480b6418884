"""Background jobs (batches, fine-tuning, vector-store ingestion) that survive restarts.

A job is a stored document whose state says it is unfinished. Each job kind
registers a coroutine that drives one job to its end, reading and writing its
state through the store, so it can be stopped at any point and resumed: on
startup (and then every ``rescan_s``) the runner finds unfinished jobs and runs
them. A lease per job makes sure only one process, of however many share the
store, runs a given job; a process that dies stops renewing its leases, and
another takes its jobs over once they lapse, or at once when the holder was a
process on this same host that no longer exists (a restart after a crash).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..store import Doc, Store, StoreError

log = logging.getLogger("fakeai.jobs")

Runner = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class _Kind:
    run: Runner
    unfinished: Callable[[Doc], bool]


class Jobs:
    def __init__(self, store: Store, lease_s: float = 10.0, rescan_s: float = 5.0) -> None:
        self.store = store
        self.host = os.uname().nodename
        self.owner = f"{self.host}:{os.getpid()}:{os.urandom(3).hex()}"
        self.lease_s = lease_s
        self.rescan_s = rescan_s
        self._kinds: dict[str, _Kind] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task] = {}
        self._scanner: asyncio.Task | None = None

    def register(self, kind: str, run: Runner, unfinished: Callable[[Doc], bool]) -> None:
        """``run(id)`` drives the stored ``kind`` document ``id`` until it is finished;
        ``unfinished(doc)`` says whether a stored document still needs running."""
        self._kinds[kind] = _Kind(run, unfinished)

    def start(self, kind: str, id: str) -> None:
        """Run a job now in this process (if no other process holds it)."""
        key = (kind, id)
        if key not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._hold_and_run(kind, id))
            self._tasks[key] = task
            task.add_done_callback(lambda _t: self._tasks.pop(key, None))

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def _hold_and_run(self, kind: str, id: str) -> None:
        name = f"job:{kind}:{id}"
        store = self.store
        if not await store.claim(name, self.owner, self.lease_s):
            holder = await store.lease_holder(name)
            if holder is None or not self._dead_here(holder):
                return
            if not await store.claim(name, self.owner, self.lease_s, takeover=holder):
                return
            log.info("took %s %s over from %s, which is no longer running", kind, id, holder)
        work = asyncio.ensure_future(self._kinds[kind].run(id))
        try:
            while not work.done():
                await asyncio.wait([work], timeout=self.lease_s / 3)
                if not work.done() and not await store.claim(name, self.owner, self.lease_s):
                    log.warning("lost the lease of %s %s; another process runs it now", kind, id)
                    work.cancel()
            work.result()
        except asyncio.CancelledError:
            work.cancel()
            raise
        except Exception:
            log.exception("%s %s failed", kind, id)
        finally:
            try:
                await store.release(name, self.owner)
            except StoreError:
                pass

    def _dead_here(self, holder: str) -> bool:
        """Whether ``holder`` was a process of this host that has exited."""
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        if host != self.host or not pid.isdigit() or int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    async def resume(self) -> None:
        """Start every unfinished job of every registered kind."""
        for kind, k in self._kinds.items():
            async for doc in self.store.scan(kind, match=k.unfinished):
                self.start(kind, doc["id"])

    def begin(self) -> None:
        """Resume now and keep looking for orphaned jobs (whose process died)."""
        self._scanner = asyncio.get_running_loop().create_task(self._scan_forever())

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self.resume()
            except StoreError as e:
                log.warning("job scan failed: %s", e)
            await asyncio.sleep(self.rescan_s)

    async def stop(self) -> None:
        tasks = [t for t in (self._scanner, *self._tasks.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
