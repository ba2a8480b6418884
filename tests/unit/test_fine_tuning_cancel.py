"""A fine-tuning job stopped while a step is being written: the step did not happen."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from fakeai.services.fine_tuning import CHECKPOINT, EVENT, JOB, FineTuning


class Store:
    """Just what the trainer uses, in a dict; ``on_put`` runs after each write."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict] = {}
        self.on_put = lambda kind, doc: None

    async def put(self, kind, doc, parent=""):
        self.docs[kind, doc["id"]] = dict(doc)
        self.on_put(kind, doc)

    async def get(self, kind, id):
        return self.docs.get((kind, id))

    async def delete(self, kind, id):
        return self.docs.pop((kind, id), None) is not None

    async def update(self, kind, id, change):
        doc = self.docs.get((kind, id))
        out = None if doc is None else change(dict(doc))
        if out is not None:
            self.docs[kind, id] = out
        return out

    def ids(self, kind):
        return sorted(i for k, i in self.docs if k == kind)


def trainer(store: Store) -> FineTuning:
    ft = FineTuning.__new__(FineTuning)  # the run alone: no app, jobs or engine
    ft.store, ft.state = store, SimpleNamespace(settings=SimpleNamespace(fine_tune_step_ms=0))
    return ft


JOB_ID = "ftjob-abc"
# 4 steps, every one emitting a metrics event; a checkpoint at the last steps of each epoch
DOC = {"id": JOB_ID, "status": "running", "_step": 0, "_model": "ft:gpt-4o-mini:org::abc",
       "_plan": {"examples": 4, "batch_size": 2, "n_epochs": 2, "validation": False, "method": "supervised",
                 "seed": 1}}


@pytest.mark.parametrize("stop_as", ["cancelled", "paused"])
def test_a_step_written_while_the_job_stopped_is_taken_back(stop_as):
    store = Store()
    store.docs[JOB, JOB_ID] = dict(DOC)

    def stop_during_step_2(kind, doc):  # the cancel lands between the step's writes and its commit
        if kind == EVENT and doc["id"].endswith("-m2"):
            store.docs[JOB, JOB_ID]["status"] = stop_as

    store.on_put = stop_during_step_2
    finished = asyncio.run(trainer(store)._train(dict(DOC)))
    assert finished is False
    assert store.ids(EVENT) == ["ftevent-abc-m1"]  # step 2's metrics and checkpoint event are gone
    assert store.ids(CHECKPOINT) == []
    assert store.docs[JOB, JOB_ID]["_step"] == 1


def test_an_uninterrupted_run_keeps_every_step():
    store = Store()
    store.docs[JOB, JOB_ID] = dict(DOC)
    assert asyncio.run(trainer(store)._train(dict(DOC))) is True
    assert {"ftevent-abc-m1", "ftevent-abc-m2", "ftevent-abc-m4"} <= set(store.ids(EVENT))
    assert store.ids(CHECKPOINT) and store.docs[JOB, JOB_ID]["_step"] == 4
