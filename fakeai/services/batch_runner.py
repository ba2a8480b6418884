"""Running a batch: every line of the input file goes through the server's own app,
in-process, exactly like a live request, and its reply becomes a line of the
output file (2xx) or the error file.

Durability. Results are committed in chunks (``batch_chunk`` documents under
the batch: every 100 lines or 250 ms), and a line counts as done only once its
chunk is durable. After a crash the job resumes (``Jobs`` restarts it at
startup, or another replica takes it over when the lease lapses): it rebuilds
the set of done line numbers and the counts from the chunks and runs only the
other lines, so no line is lost or written twice (a line that ran but was not
committed runs again). The output and error files are written from the chunks
at the end under ids fixed beforehand, so a finalization cut short is simply
redone.

Speed. Lines run ``batch_concurrency`` at a time through the engine, whose
simulated latency is divided by ``batch_speedup`` for them (the engine's
``speedup`` context variable, set for this job's tasks only).

Marking. Each line carries ``scope["state"]["batch_id"]`` (for usage
accounting) and the header ``x-fakeai-batch-id``; the request middleware strips
that header from outside requests, so no client can pose as a batch line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

from ..engine.core import speedup
from ..store import Doc, Store
from . import batches, files
from .batches import CHUNK_KIND, KIND
from .inprocess import SERVER_ERROR, Reply, call_app

log = logging.getLogger("fakeai.batches")

FLUSH_LINES = 100
FLUSH_S = 0.25
_END_MESSAGES = {
    "cancelled": ("batch_cancelled", "This request was cancelled before it could be executed."),
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
}
_DONE_AT = {"completed": "completed_at", "cancelled": "cancelled_at", "expired": "expired_at"}


@dataclass(slots=True)
class Progress:
    """What the committed chunks of a batch say: done lines, counts, token usage."""

    done: set[int] = field(default_factory=set)
    completed: int = 0
    failed: int = 0
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # input, cached, output, reasoning
    chunks: int = 0

    def add(self, chunk: Doc) -> list[list]:
        """Take in a chunk; returns its lines not seen before (a chunk written twice by
        two processes racing for a lapsed lease counts once)."""
        self.chunks += 1
        new = [ln for ln in chunk["lines"] if ln[0] not in self.done]
        for number, ok, _text, usage in new:
            self.done.add(number)
            if ok:
                self.completed += 1
                for i, v in enumerate(usage):
                    self.usage[i] += v
            else:
                self.failed += 1
        return new

    def apply(self, doc: Doc) -> Doc:
        doc["request_counts"]["completed"] = self.completed
        doc["request_counts"]["failed"] = self.failed
        inp, cached, out, reasoning = self.usage
        doc["usage"] = {"input_tokens": inp, "input_tokens_details": {"cached_tokens": cached},
                        "output_tokens": out, "output_tokens_details": {"reasoning_tokens": reasoning},
                        "total_tokens": inp + out}
        return doc


class BatchRunner:
    """Drives batch jobs; registered with ``Jobs`` as kind ``batch``."""

    def __init__(self, app, store: Store, settings) -> None:
        self.app, self.store, self.settings = app, store, settings
        self._stops: dict[str, asyncio.Event] = {}  # batches running here -> "stop now"

    def register(self, jobs) -> None:
        jobs.register(KIND, self.run, batches.unfinished)

    def wake(self, batch_id: str) -> None:
        """The batch was cancelled: stop its lines now if it runs in this process."""
        stop = self._stops.get(batch_id)
        if stop is not None:
            stop.set()

    async def run(self, batch_id: str) -> None:
        doc = await self.store.get(KIND, batch_id)
        if doc is None or not batches.unfinished(doc):
            return
        token = speedup.set(self.settings.batch_speedup)  # inherited by every line's task
        try:
            if doc["_outcome"] is None and doc["status"] == "validating":
                doc = await self._validate(doc)
            if doc is not None and doc["_outcome"] is None and doc["status"] in ("in_progress", "cancelling"):
                doc = await self._execute(doc)
            if doc is not None and doc["_outcome"] is not None:
                await self._finalize(doc)
        except KeyError:  # a blob is gone: the input file deleted while the batch ran?
            if await files.get_file(self.store, doc["input_file_id"]) is not None:
                raise
            await self._fail(doc["id"], "file_not_found", f"The input file {doc['input_file_id']} was deleted "
                             "before the batch finished.")
        finally:
            speedup.reset(token)

    async def _fail(self, batch_id: str, code: str, message: str) -> None:
        now = int(time.time())

        def change(d: Doc) -> Doc:
            d.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": code, "message": message, "param": "input_file_id", "line": None}]})
            return d

        await self.store.update(KIND, batch_id, change)
        await self._drop_chunks(batch_id)

    # -- validating -----------------------------------------------------------------
    async def _validate(self, doc: Doc) -> Doc:
        errors, total, model = await batches.check_input(self.store, doc)
        now = int(time.time())

        def change(d: Doc) -> Doc:
            if errors:
                d.update(status="failed", failed_at=now, errors={"object": "list", "data": errors})
                return d
            d["request_counts"]["total"] = total
            if model is not None:
                d["model"] = model
            if d["status"] == "validating":
                d.update(status="in_progress", in_progress_at=now)
            return d

        return await self.store.update(KIND, doc["id"], change)

    # -- running the lines --------------------------------------------------------------
    async def _progress(self, batch_id: str) -> Progress:
        progress = Progress()
        async for chunk in self._chunks(batch_id):
            progress.add(chunk)
        return progress

    async def _chunks(self, batch_id: str) -> AsyncIterator[Doc]:
        after = None
        while True:  # a few at a time: a chunk may hold megabytes (embeddings)
            page = await self.store.page(CHUNK_KIND, parent=batch_id, after=after, limit=4, order="asc")
            for chunk in page.items:
                yield chunk
            if not page.has_more:
                return
            after = page.last_id

    async def _drop_chunks(self, batch_id: str) -> None:
        ids = [chunk["id"] async for chunk in self._chunks(batch_id)]  # (deleting would end the paging)
        for chunk_id in ids:
            await self.store.delete(CHUNK_KIND, chunk_id)

    async def _execute(self, doc: Doc) -> Doc:
        batch_id = doc["id"]
        progress = await self._progress(batch_id)
        run = _Run(self, doc, progress)
        self._stops[batch_id] = run.stop
        try:
            outcome = await run.go()
        finally:
            self._stops.pop(batch_id, None)
        if outcome == "completed" and len(progress.done) < doc["request_counts"]["total"]:
            raise KeyError(doc["input_file_id"])  # lines went missing: was the input deleted meanwhile?
        now = int(time.time())
        out_ids = {"output": files.new_id("file-"), "error": files.new_id("file-")}

        def change(d: Doc) -> Doc:
            d["_outcome"] = "cancelled" if d["status"] == "cancelling" else outcome
            d["_out_ids"] = out_ids
            if d["_outcome"] == "completed":
                d.update(status="finalizing", finalizing_at=now)
            return progress.apply(d)

        return await self.store.update(KIND, batch_id, change)

    # -- finalizing -----------------------------------------------------------------
    async def _finalize(self, doc: Doc) -> None:
        batch_id, outcome, ids = doc["id"], doc["_outcome"], doc["_out_ids"]
        progress = await self._progress(batch_id)
        ttl = doc["_output_ttl_s"]
        store = self.store
        output = error = None
        if progress.completed:
            output = await files.create_file(store, self._results(batch_id, ok=True),
                                             filename=f"{batch_id}_output.jsonl", purpose="batch_output",
                                             expires_after_s=ttl, file_id=ids["output"])
        unrun = len(progress.done) < doc["request_counts"]["total"] and outcome in _END_MESSAGES
        if progress.failed or unrun:
            error = await files.create_file(store, self._errors(doc, progress.done if unrun else None),
                                            filename=f"{batch_id}_error.jsonl", purpose="batch_output",
                                            expires_after_s=ttl, file_id=ids["error"])
        now = int(time.time())

        def change(d: Doc) -> Doc:
            d["status"] = outcome
            d[_DONE_AT[outcome]] = now
            if output is not None:
                d["output_file_id"] = output["id"]
            if error is not None:
                d["error_file_id"] = error["id"]
            return progress.apply(d)

        await store.update(KIND, batch_id, change)
        await self._drop_chunks(batch_id)  # the files hold the results now

    async def _results(self, batch_id: str, ok: bool) -> AsyncIterator[bytes]:
        seen: set[int] = set()
        async for chunk in self._chunks(batch_id):
            out = []
            for number, good, text, _usage in chunk["lines"]:
                if good == ok and number not in seen:
                    out.append(text.encode())
                seen.add(number)
            if out:
                yield b"\n".join(out) + b"\n"

    async def _errors(self, doc: Doc, done: set[int] | None) -> AsyncIterator[bytes]:
        """Failed lines, then (cancelled or expired batches) a line for every request not run."""
        async for piece in self._results(doc["id"], ok=False):
            yield piece
        if done is None:
            return
        code, message = _END_MESSAGES[doc["_outcome"]]
        async for number, raw in files.read_lines(self.store, doc["input_file_id"]):
            if number not in done:
                cid = orjson.loads(raw).get("custom_id")
                yield orjson.dumps({"id": files.new_id("batch_req_"), "custom_id": cid, "response": None,
                                    "error": {"code": code, "message": message}}) + b"\n"


class _Run:
    """One process's pass over the remaining lines of a batch."""

    def __init__(self, runner: BatchRunner, doc: Doc, progress: Progress) -> None:
        self.runner, self.store, self.doc, self.progress = runner, runner.store, doc, progress
        self.id = doc["id"]
        self.stop = asyncio.Event()
        self.why = "completed"
        self.pending: list[list] = []
        self.flush_now = asyncio.Event()
        self.lock = asyncio.Lock()
        self.inflight: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(runner.settings.batch_concurrency)
        marks = [(b"x-fakeai-batch-id", self.id.encode()), (b"content-type", b"application/json")]
        self.headers = marks + [(k.encode(), v.encode()) for k, v in doc["_headers"]]
        who = doc.get("_identity") or {}
        self.state = {"batch_id": self.id, **{k: who[k] for k in ("api_key_id", "project_id", "user_id")
                                              if who.get(k) is not None}}
        if who.get("authenticated"):  # the guard knew the key: lines act as it, by its id
            self.state["act_as_key"] = who["api_key_id"]
        self.closing = False
        if doc["status"] == "cancelling":  # cancelled while it was validating
            self.stop.set()

    async def go(self) -> str:
        flusher = asyncio.ensure_future(self._flusher())
        canceller = asyncio.ensure_future(self._cancel_on_stop())
        try:
            await self._feed()
            await asyncio.gather(*self.inflight, return_exceptions=True)
            self.closing = True  # the flusher commits what is pending and ends
            self.flush_now.set()
            await flusher
            await self._flush()
        finally:
            flusher.cancel()
            canceller.cancel()
            for t in self.inflight:
                t.cancel()
        return self.why

    async def _feed(self) -> None:
        done = self.progress.done
        async for number, raw in files.read_lines(self.store, self.doc["input_file_id"]):
            if number in done:
                continue
            await self.slots.acquire()
            if self.stop.is_set() or self._expired():
                self.slots.release()
                return
            task = asyncio.ensure_future(self._line(number, raw))
            self.inflight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.inflight.discard(task)
        self.slots.release()

    def _expired(self) -> bool:
        if time.time() >= self.doc["expires_at"]:
            self.why = "expired"
            self.stop.set()
        return self.stop.is_set()

    async def _cancel_on_stop(self) -> None:
        await self.stop.wait()
        if self.why == "completed":
            self.why = "cancelled"
        for t in list(self.inflight):
            t.cancel()

    async def _line(self, number: int, raw: bytes) -> None:
        line = orjson.loads(raw)
        body = orjson.dumps(line["body"])
        try:
            reply = await call_app(self.runner.app, "POST", line["url"], body, self.headers, dict(self.state))
        except Exception:  # never lose a line: it fails like a 500
            log.exception("batch %s line %d failed", self.id, number)
            reply = Reply(500, {}, SERVER_ERROR)
        ok = 200 <= reply.status < 300
        try:
            parsed = orjson.loads(reply.body)
            body_json = reply.body
        except orjson.JSONDecodeError:
            parsed, body_json = None, orjson.dumps(reply.body.decode(errors="replace"))
        rid = reply.headers.get(b"x-request-id", b"").decode()
        text = (b'{"id":"' + files.new_id("batch_req_").encode() + b'","custom_id":' + orjson.dumps(line["custom_id"])
                + b',"response":{"status_code":' + str(reply.status).encode() + b',"request_id":"' + rid.encode()
                + b'","body":' + body_json + b'},"error":null}')
        self.pending.append([number, ok, text.decode(), _usage(parsed) if ok else [0, 0, 0, 0]])
        if len(self.pending) >= FLUSH_LINES:
            self.flush_now.set()

    async def _flusher(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.flush_now.wait(), FLUSH_S)
            except TimeoutError:
                pass
            self.flush_now.clear()
            await self._flush()
            if self.closing:
                return

    async def _flush(self) -> None:
        """Commit the pending results as one chunk, then the batch's live counts; and
        notice a cancel (from any process) or the end of the window."""
        async with self.lock:
            lines, self.pending = self.pending, []
            progress = self.progress
            if lines:
                chunk = {"id": f"{self.id}.{progress.chunks:06d}", "lines": lines}
                await self.store.put(CHUNK_KIND, chunk, parent=self.id)
                progress.add(chunk)
                doc = await self.store.update(KIND, self.id, progress.apply)
            else:
                doc = await self.store.get(KIND, self.id)
            if doc is None:
                self.stop.set()
                return
            self.doc = doc
            if doc["status"] == "cancelling":
                self.stop.set()
            else:
                self._expired()


def _usage(body) -> list[int]:
    """``[input, cached, output, reasoning]`` tokens of a reply body of any endpoint."""
    u = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(u, dict):
        return [0, 0, 0, 0]
    inp = u.get("prompt_tokens", u.get("input_tokens")) or 0
    out = u.get("completion_tokens", u.get("output_tokens")) or 0
    cached = (u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("completion_tokens_details") or u.get("output_tokens_details") or {}).get(
        "reasoning_tokens") or 0
    return [inp, cached, out, reasoning]
