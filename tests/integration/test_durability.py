"""SIGKILL in the middle of a batch, restart on the same data: the batch resumes where
it stopped and completes with every line exactly once, and every file is intact.
Against the SQLite store (same --data-dir) and against Redis (same redis-server)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal

import pytest

from fakeai.config import Settings
from fakeai.services.batches import CHUNK_KIND
from fakeai.store import open_store
from tests.redis_server import run_redis
from tests.server import run_server, wait_for

LINES = 300
TIMING = ("--ttft", "20", "--itl", "0", "--batch-concurrency", "4")  # ~1.5 s of batch work


def rows() -> list[dict]:
    return [{"custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-4o-mini", "max_tokens": 5, "seed": i,
                      "messages": [{"role": "user", "content": f"Count to {i}."}]}} for i in range(LINES)]


def served(server) -> float:
    """Chat requests this server process has completed (vLLM's success counter)."""
    with server.http() as http:
        text = http.get("/metrics").text
    pattern = r'^vllm:request_success_total\{[^}]*model_name="gpt-4o-mini"[^}]*\} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_sigkill_mid_batch_then_resume(backend, tmp_path):
    with contextlib.ExitStack() as stack:
        if backend == "redis":
            url = stack.enter_context(run_redis())
            store_args, settings = ("--store", "redis", "--redis-url", url), Settings(store="redis", redis_url=url)
        else:
            store_args, settings = ("--data-dir", str(tmp_path / "data")), Settings(data_dir=str(tmp_path / "data"))
        blobs = {"model.bin": os.urandom(2_500_000), "notes.txt": b"line\n" * 10_000}
        jsonl = "\n".join(json.dumps(r) for r in rows()).encode()

        with run_server(*store_args, *TIMING) as first:
            c = first.client()
            kept = {c.files.create(file=(name, data), purpose="user_data").id: hashlib.sha256(data).hexdigest()
                    for name, data in blobs.items()}
            source = c.files.create(file=("in.jsonl", jsonl), purpose="batch")
            kept[source.id] = hashlib.sha256(jsonl).hexdigest()
            batch = c.batches.create(input_file_id=source.id, endpoint="/v1/chat/completions",
                                     completion_window="24h")
            assert wait_for(lambda: c.batches.retrieve(batch.id).request_counts.completed >= 60, 30, 0.01)
            os.kill(first.proc.pid, signal.SIGKILL)
            first.proc.wait()
        with run_server(*store_args, *TIMING) as second:
            c = second.client()
            at_restart = c.batches.retrieve(batch.id)
            assert at_restart.status == "in_progress"
            committed = at_restart.request_counts.completed
            assert 60 <= committed < LINES
            # the dead process's lease on the job lapses (10 s), then this one resumes it
            assert wait_for(lambda: c.batches.retrieve(batch.id).status == "completed", 60, 0.1)
            b = c.batches.retrieve(batch.id)
            assert (b.request_counts.total, b.request_counts.completed, b.request_counts.failed) == (LINES, LINES, 0)
            assert b.error_file_id is None
            out = [json.loads(x) for x in c.files.content(b.output_file_id).text.splitlines()]
            ids = [o["custom_id"] for o in out]
            assert len(ids) == LINES and set(ids) == {f"line-{i}" for i in range(LINES)}  # each exactly once
            assert all(o["response"]["status_code"] == 200 for o in out)
            # resumed, not restarted: this process ran the lines not committed before the kill (a few
            # more only if its job was interrupted and resumed again, e.g. a lease lost under heavy load)
            assert 0 < served(second) < LINES, second.output()[-3000:]
            for fid, digest in kept.items():
                assert hashlib.sha256(c.files.content(fid).content).hexdigest() == digest, fid
            assert asyncio.run(leftover_chunks(settings, batch.id)) == 0  # the files hold the results now


async def leftover_chunks(settings: Settings, batch_id: str) -> int:
    store = open_store(settings)  # the server's own store, read the way a replica would
    await store.open()
    try:
        return await store.count(CHUNK_KIND, parent=batch_id)
    finally:
        await store.close()
