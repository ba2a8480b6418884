"""Crashes and store outages, against the real server and a real redis-server.

* SIGKILL in the middle of concurrent file uploads, restart on the same store: every
  upload the server acknowledged reads back byte for byte; an unacknowledged one is
  absent or whole, never truncated; no blob is left that no file owns.
* SIGKILL in the middle of a fine-tuning run: it resumes and succeeds, each step,
  event and checkpoint exactly once. (tests/integration/test_durability.py does the
  same for batches; tests/integration/test_fine_tuning.py checks the SQLite run's
  metrics curve.)
* Redis stopped under load: what needs the store answers 503 in OpenAI's envelope at
  once (also when Redis hangs), generation goes on, background work (a fine-tuning
  run, usage accounting) survives, and everything recovers when Redis is back.

Each crash test runs against the SQLite store (same --data-dir) and Redis (same server).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest
import redis

from fakeai.config import Settings
from fakeai.services.fine_tuning import CHECKPOINT, JOB
from fakeai.store import open_store
from tests.openapi_spec import validate_error
from tests.redis_server import redis_server
from tests.server import run_server, wait_for

MODEL, GEN_MODEL = "gpt-4o-mini", "gpt-4.1-nano"


@contextlib.contextmanager
def backend(name: str, tmp_path: Path):
    """(server arguments, where blobs can be inspected) of one store backend."""
    if name == "redis":
        with redis_server() as rs:
            yield ("--store", "redis", "--redis-url", rs.url), rs
    else:
        yield ("--data-dir", str(tmp_path / "data")), tmp_path / "data"


def kill(server) -> None:
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()


def blob_keys(where) -> tuple[set[str], list[str]]:
    """(keys of whole blobs, names of anything partial) in a store's blob space."""
    if isinstance(where, Path):
        files = [p for p in (where / "blobs").rglob("*") if p.is_file()]
        return {p.name for p in files if not p.name.startswith(".")}, [p.name for p in files if p.name.startswith(".")]
    r = redis.Redis.from_url(where.url)
    try:
        keys = [k.decode() for k in r.scan_iter("fakeai:b*")]
        whole = {k.removeprefix("fakeai:b:") for k in keys if k.startswith("fakeai:b:") and ".tmp." not in k}
        meta = {k.decode() for k in r.hkeys("fakeai:bm")}
        assert whole == meta, "blob contents and blob index disagree"
        return whole, [k for k in keys if ".tmp." in k or k.startswith("fakeai:bw:")]
    finally:
        r.close()


# -- uploads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_sigkill_during_uploads_keeps_every_acknowledged_file_and_no_orphan(store, tmp_path):
    acked: dict[str, str] = {}  # file id -> sha256 of what was sent
    sent: dict[str, int] = {}  # sha256 -> size, of every upload attempted
    lock = threading.Lock()

    def upload(server, worker: int) -> None:
        c = server.client(timeout=20)
        for n in range(1000):
            data = os.urandom(200_000 + 97_000 * ((worker * 7 + n) % 13))  # 0.2 - 1.4 MB
            digest = hashlib.sha256(data).hexdigest()
            with lock:
                sent[digest] = len(data)
            try:
                f = c.files.create(file=(f"w{worker}-{n}.bin", data), purpose="user_data")
            except openai.APIError:  # the server died under this request: not acknowledged
                return
            with lock:
                acked[f.id] = digest

    with backend(store, tmp_path) as (args, where):
        with run_server(*args) as first:
            workers = [threading.Thread(target=upload, args=(first, i)) for i in range(6)]
            for w in workers:
                w.start()
            assert wait_for(lambda: len(acked) >= 24, 40)
            kill(first)  # with the other uploads in every stage of being written
            for w in workers:
                w.join(30)
        assert len(sent) > len(acked)  # some were cut short
        with run_server(*args) as second:
            c = second.client()
            listed = {f.id: f for f in c.files.list(limit=10000)}
            assert set(acked) <= set(listed)  # nothing acknowledged is lost
            for fid, f in listed.items():
                content = c.files.content(fid).content
                digest = hashlib.sha256(content).hexdigest()
                if fid in acked:
                    assert digest == acked[fid], fid  # byte for byte
                else:  # written but cut before its answer: whole, or it would not be listed
                    assert sent.get(digest) == len(content) == f.bytes, fid
            whole, partial = blob_keys(where)
            assert whole == set(listed)  # every blob belongs to a file
            assert partial == []  # and nothing half-written is left


# -- fine-tuning -----------------------------------------------------------------------------
def fine_tune_rows(n: int = 10) -> bytes:
    return b"\n".join(json.dumps({"messages": [
        {"role": "user", "content": f"What is {i} + {i}?"},
        {"role": "assistant", "content": f"{2 * i}"}]}).encode() for i in range(n))


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_sigkill_during_fine_tuning_resumes_without_duplicates(store, tmp_path):
    # 10 examples, batch size 1, 8 epochs: 80 steps; checkpoints at steps 60, 70, 80
    with backend(store, tmp_path) as (args, where):
        settings = Settings(store="redis", redis_url=where.url) if store == "redis" else Settings(data_dir=str(where))
        with run_server(*args, "--fine-tune-step-ms", "40") as first:
            c = first.client()
            training = c.files.create(file=("train.jsonl", fine_tune_rows()), purpose="fine-tune")
            job = c.fine_tuning.jobs.create(model=MODEL, training_file=training.id, seed=7,
                                            hyperparameters={"n_epochs": 8, "batch_size": 1})
            assert wait_for(lambda: c.fine_tuning.jobs.checkpoints.list(job.id).data, 30, 0.02)
            kill(first)  # between the first checkpoint (step 60) and the end
        left = asyncio.run(stored_job(settings, job.id))  # what the dead process had written
        # killed mid-run: the checkpoint of step 60 is written just before the job's step counter,
        # so the counter may still read 59
        assert left["job"]["status"] == "running" and 59 <= left["job"]["_step"] < 80
        assert any(k["step_number"] == 60 for k in left["checkpoints"].values())
        with run_server(*args, "--fine-tune-step-ms", "1") as second:  # resumes it at start-up
            c = second.client()
            assert wait_for(lambda: c.fine_tuning.jobs.retrieve(job.id).status == "succeeded", 30, 0.05)
            done = c.fine_tuning.jobs.retrieve(job.id)
            events = list(c.fine_tuning.jobs.list_events(job.id, limit=100))
            assert len({e.id for e in events}) == len(events)
            steps = sorted(e.data["step"] for e in events if e.type == "metrics")
            assert steps == list(range(1, 81))  # each step once, none lost
            messages = Counter(e.message for e in events if e.type == "message")
            for text in ("Fine-tuning job started", "Files validated, moving job to queued state",
                         "Checkpoint created at step 60", "Checkpoint created at step 70",
                         "Checkpoint created at step 80", "The job has successfully completed"):
                assert messages[text] == 1, (text, messages)
            checkpoints = list(c.fine_tuning.jobs.checkpoints.list(job.id))
            assert [k.step_number for k in checkpoints] == [80, 70, 60]
            for k in checkpoints:  # those of steps done before the crash are kept as they were
                old = left["checkpoints"].get(k.id)
                if old is not None and k.step_number <= left["job"]["_step"]:
                    assert k.created_at == old["created_at"]
                    assert k.metrics.model_dump(exclude_none=True) == old["metrics"]
            assert done.trained_tokens and done.fine_tuned_model
            csv = c.files.content(done.result_files[0]).text.splitlines()
            assert len(csv) == 81 and csv[0].startswith("step,")
            assert done.fine_tuned_model in {m.id for m in c.models.list()}


async def stored_job(settings: Settings, job_id: str) -> dict:
    """A fine-tuning job's document and checkpoints, read from the store as a replica would."""
    store = open_store(settings)
    await store.open()
    try:
        return {"job": await store.get(JOB, job_id),
                "checkpoints": {k["id"]: k async for k in store.scan(CHECKPOINT, parent=job_id)}}
    finally:
        await store.close()


# -- Redis outage ------------------------------------------------------------------------------
CHAT = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "Hello"}]}


class Load:
    """A few client threads sending a steady mix of requests; every outcome is recorded."""

    KINDS = ("list", "retrieve", "chat_store", "responses", "generate")

    def __init__(self, base_url: str, file_id: str) -> None:
        self.base_url, self.file_id = base_url, file_id
        self.results: list[tuple[float, float, str, int, httpx.Response | None]] = []  # start, end, kind, status
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(4)]

    def _call(self, h: httpx.Client, kind: str) -> httpx.Response:
        if kind == "list":
            return h.get("/v1/files")
        if kind == "retrieve":
            return h.get(f"/v1/files/{self.file_id}")
        if kind == "chat_store":
            return h.post("/v1/chat/completions", json={**CHAT, "store": True})
        if kind == "responses":
            return h.post("/v1/responses", json={"model": MODEL, "input": "Hello", "max_output_tokens": 16})
        return h.post("/v1/chat/completions", json={**CHAT, "model": GEN_MODEL})  # no store

    def _run(self, worker: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as h:
            i = worker
            while not self.stopping.is_set():
                kind = self.KINDS[i % len(self.KINDS)]
                i += 1
                t0 = time.monotonic()
                try:
                    r = self._call(h, kind)
                    status = r.status_code
                except httpx.HTTPError:  # a timeout or a dropped connection: recorded as -1
                    r, status = None, -1
                with self.lock:
                    self.results.append((t0, time.monotonic(), kind, status, r))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(30)

    def count(self, kind: str, status: int, since: float) -> int:
        with self.lock:
            return sum(1 for t0, _, k, s, _ in self.results if k == kind and s == status and t0 >= since)

    def between(self, start: float, end: float) -> list[tuple[float, float, str, int, httpx.Response | None]]:
        with self.lock:
            return [row for row in self.results if row[0] >= start and row[1] <= end]


def usage_requests(base_url: str, model: str) -> int:
    with httpx.Client(base_url=base_url, timeout=15) as h:
        r = h.get("/v1/organization/usage/completions",
                  params={"start_time": int(time.time()) - 3600, "group_by": "model", "bucket_width": "1h"})
    assert r.status_code == 200, r.text
    return sum(x["num_model_requests"] for b in r.json()["data"] for x in b["results"] if x.get("model") == model)


def test_redis_outage_under_load_answers_503_then_recovers(tmp_path):
    store_kinds = ("list", "retrieve", "chat_store", "responses")
    with redis_server() as rs, run_server("--store", "redis", "--redis-url", rs.url, "--ttft", "0", "--itl", "0",
                                          "--fine-tune-step-ms", "30", "--usage-flush-ms", "100") as s:
        c = s.client()
        kept = c.files.create(file=("kept.txt", b"still here\n" * 100), purpose="user_data")
        training = c.files.create(file=("train.jsonl", fine_tune_rows()), purpose="fine-tune")
        job = c.fine_tuning.jobs.create(model=MODEL, training_file=training.id,  # ~3 s of steps: spans the outage
                                        hyperparameters={"n_epochs": 10, "batch_size": 1})
        with Load(s.base_url, kept.id) as load:
            t_up = time.monotonic()
            assert wait_for(lambda: all(load.count(k, 200, t_up) >= 3 for k in Load.KINDS), 20)
            rs.stop()
            t_down = time.monotonic()
            assert wait_for(lambda: all(load.count(k, 503, t_down) >= 3 for k in store_kinds)
                            and load.count("generate", 200, t_down) >= 10, 20)
            t_back = time.monotonic()
            rs.start()  # the same port and data
            assert wait_for(lambda: all(load.count(k, 200, t_back) >= 3 for k in Load.KINDS), 20)
            t_end = time.monotonic()

        outage = load.between(t_down + 0.5, t_back)  # (requests in flight as Redis went down may 200)
        assert outage and s.proc.poll() is None  # the server lived through it
        for _, _, kind, status, r in outage:
            if kind == "generate":
                assert status == 200  # generation does not need the store
                continue
            assert status == 503, (kind, status, r.text if r is not None else None)
            validate_error(r.json())
            assert r.json()["error"]["code"] == "service_unavailable" and r.headers["retry-after"] == "1"
        assert max(end - start for start, end, *_ in outage) < 3  # failing fast, not hanging
        after = [row for row in load.between(t_back, t_end + 60) if row[3] == 200]
        first_ok = {kind: min(t0 for t0, _, k, _, _ in after if k == kind) for kind in Load.KINDS}
        late = [row for row in load.between(max(first_ok.values()), t_end + 60) if row[3] != 200]
        assert not late, [(k, st) for _, _, k, st, _ in late]  # recovered for good, without a restart

        # background work survived: the fine-tuning run finishes, every step once ...
        assert wait_for(lambda: c.fine_tuning.jobs.retrieve(job.id).status == "succeeded", 40, 0.2), s.output()[-3000:]
        steps = sorted(e.data["step"] for e in c.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics")
        assert steps == list(range(1, 101))
        # ... and the usage of every generation served during the outage was kept and written later
        served = sum(1 for _, _, k, st, _ in load.results if k == "generate" and st == 200)
        assert wait_for(lambda: usage_requests(s.base_url, GEN_MODEL) == served, 10, 0.2)
        assert "usage flush failed (retried with the next)" in s.output()

        # a Redis that hangs (stopped, not gone) is a 503 after the reply timeout, not a hang
        os.kill(rs.proc.pid, signal.SIGSTOP)
        try:
            with s.http() as h:
                t0 = time.monotonic()
                r = h.get("/v1/files")
                waited = time.monotonic() - t0
                assert r.status_code == 503 and waited < 8, waited
                assert h.post("/v1/chat/completions", json={**CHAT, "model": GEN_MODEL}).status_code == 200
        finally:
            os.kill(rs.proc.pid, signal.SIGCONT)
        assert wait_for(lambda: httpx.get(s.api_url + "/files", timeout=10).status_code == 200, 15, 0.2)
