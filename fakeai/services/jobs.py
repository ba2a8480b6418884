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


_owner: tuple[int, str] | None = None  # (pid, name) of this process


def process_owner() -> str:
    """This process's owner name ("host:pid:token"), the same for the process's life; see ``dead_here``."""
    global _owner
    pid = os.getpid()
    if _owner is None or _owner[0] != pid:
        _owner = (pid, f"{os.uname().nodename}:{pid}:{os.urandom(3).hex()}")
    return _owner[1]


def dead_here(owner: str) -> bool:
    """Whether ``owner`` (a ``process_owner``, or one with a ``:suffix``) was a process of
    this host that has exited: its pid is gone, or is this process's under another name
    (a restarted container gets the same pid)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != os.uname().nodename or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        me = process_owner()
        return owner != me and not owner.startswith(me + ":")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(slots=True)
class _Kind:
    run: Runner
    unfinished: Callable[[Doc], bool]


class Jobs:
    def __init__(self, store: Store, lease_s: float = 10.0, rescan_s: float = 5.0) -> None:
        self.store = store
        self.owner = f"{process_owner()}:{os.urandom(2).hex()}"  # one per runner (tests run several)
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
        try:
            if not await store.claim(name, self.owner, self.lease_s):
                holder = await store.lease_holder(name)
                if holder is None or not dead_here(holder):
                    return
                if not await store.claim(name, self.owner, self.lease_s, takeover=holder):
                    return
                log.info("took %s %s over from %s, which is no longer running", kind, id, holder)
        except StoreError as e:  # the next scan tries again
            log.warning("could not take %s %s: %s", kind, id, e)
            return
        work = asyncio.ensure_future(self._kinds[kind].run(id))
        try:
            while not work.done():
                await asyncio.wait([work], timeout=self.lease_s / 3)
                if not work.done() and not await store.claim(name, self.owner, self.lease_s):
                    log.warning("lost the lease of %s %s; another process runs it now", kind, id)
                    work.cancel()
            work.result()
        except asyncio.CancelledError:
            raise
        except StoreError as e:  # the job stopped where it was; a later scan resumes it
            log.warning("%s %s paused, the store failed: %s", kind, id, e)
        except Exception:
            log.exception("%s %s failed", kind, id)
        finally:
            if not work.done():  # this process cannot vouch for its lease any more
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            try:
                await store.release(name, self.owner)
            except StoreError:
                pass

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
            except Exception:  # keep scanning whatever one round hit
                log.exception("job scan failed")
            await asyncio.sleep(self.rescan_s)

    async def stop(self) -> None:
        tasks = [t for t in (self._scanner, *self._tasks.values()) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
