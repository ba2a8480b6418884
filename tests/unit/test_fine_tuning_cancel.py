"""A fine-tuning job stopped while a step is being written: the step did not happen."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from fakeai.services.fine_tuning import CHECKPOINT, EVENT, JOB, FineTuning
from fakeai.store.sqlite import SQLiteStore


def trainer(store) -> FineTuning:
    ft = FineTuning.__new__(FineTuning)  # the run alone: no app, jobs or engine
    ft.store, ft.state = store, SimpleNamespace(settings=SimpleNamespace(fine_tune_step_ms=0))
    return ft


async def ids(store, kind: str) -> list[str]:
    return sorted([d["id"] async for d in store.scan(kind, parent=JOB_ID)])


JOB_ID = "ftjob-abc"
# 4 steps, every one emitting a metrics event; a checkpoint at the last steps of each epoch
DOC = {"id": JOB_ID, "status": "running", "_step": 0, "_model": "ft:gpt-4o-mini:org::abc",
       "_plan": {"examples": 4, "batch_size": 2, "n_epochs": 2, "validation": False, "method": "supervised",
                 "seed": 1}}


async def in_memory_store():
    store = SQLiteStore(None)  # the embedded store, in memory
    await store.open()
    await store.put(JOB, dict(DOC))
    return store


@pytest.mark.parametrize("stop_as", ["cancelled", "paused"])
def test_a_step_written_while_the_job_stopped_is_taken_back(stop_as):
    async def go():
        store = await in_memory_store()
        put = store.put

        async def put_then_stop(kind, doc, parent=""):  # the cancel lands between the step's writes and its commit
            await put(kind, doc, parent)
            if kind == EVENT and doc["id"].endswith("-m2"):
                await store.update(JOB, JOB_ID, lambda d: {**d, "status": stop_as})

        store.put = put_then_stop
        finished = await trainer(store)._train(dict(DOC))
        assert finished is False
        assert await ids(store, EVENT) == ["ftevent-abc-m1"]  # step 2's metrics and checkpoint event are gone
        assert await ids(store, CHECKPOINT) == []
        assert (await store.get(JOB, JOB_ID))["_step"] == 1
        await store.close()
    asyncio.run(go())


def test_an_uninterrupted_run_keeps_every_step():
    async def go():
        store = await in_memory_store()
        assert await trainer(store)._train(dict(DOC)) is True
        assert {"ftevent-abc-m1", "ftevent-abc-m2", "ftevent-abc-m4"} <= set(await ids(store, EVENT))
        assert await ids(store, CHECKPOINT) and (await store.get(JOB, JOB_ID))["_step"] == 4
        await store.close()
    asyncio.run(go())
