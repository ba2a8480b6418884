"""The job runner: one process per job, resumption, and takeover from dead processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from fakeai.config import Settings
from fakeai.services.jobs import Jobs
from fakeai.store import open_store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_unfinished_jobs_resume_and_dead_local_holders_are_taken_over(tmp_path):
    async def go():
        store = open_store(Settings(store="sqlite", data_dir=str(tmp_path)))
        await store.open()
        host = os.uname().nodename
        await store.put("task", {"id": "t1", "done": False})
        await store.put("task", {"id": "t2", "done": False})
        await store.put("task", {"id": "t3", "done": True})
        # t2's lease is held by a process of this host that has exited; t1's by a live other host
        await store.claim("job:task:t2", f"{host}:{_dead_pid()}:xx", 60)
        await store.claim("job:task:t1", "elsewhere:1:yy", 60)
        ran: list[str] = []

        async def run(id: str) -> None:
            ran.append(id)
            await store.update("task", id, lambda d: {**d, "done": True})

        jobs = Jobs(store, lease_s=60)
        jobs.register("task", run, lambda d: not d["done"])
        await jobs.resume()
        while jobs.running:
            await asyncio.sleep(0.01)
        assert ran == ["t2"]  # t1 stays with its live holder, t3 is finished
        assert (await store.get("task", "t2"))["done"] is True
        assert await store.lease_holder("job:task:t2") is None  # released when done
        await store.close()

    asyncio.run(go())
