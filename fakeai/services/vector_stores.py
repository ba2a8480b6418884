"""Vector stores: stored resources, file ingestion as resumable jobs, and search.

Stored documents (see ``fakeai.store``):

* ``vector_store``: the public object plus ``_files`` (file id -> [status, usage
  bytes], from which ``file_counts``, ``usage_bytes`` and ``status`` are derived in
  the same atomic update) and ``_version`` (bumped by every change that affects
  search; the in-memory index cache keys on it);
* ``vector_store.file`` under the store (id ``<store>:<file>``; the public id is the
  file id), with ``_filename``, ``_batch`` and ``_run`` (a token per attachment:
  re-attaching a file starts a new run and the old one's result is discarded);
* ``vector_store.file_batch`` under the store, with ``_files`` (file id -> status);
* ``vector_store.ingest``: one per pending ingestion, the job the runner resumes
  after a restart (``fakeai.services.jobs``).

Ingestion reads the uploaded file, extracts its text (``extract``), chunks it with the
real tokenizer (``chunking``), embeds each chunk (``vector_search.embed``) and writes
three blobs per file: the chunk texts (JSON), the vectors (raw little-endian float32,
256 per chunk) and the extracted text. ``usage_bytes`` of a file is the UTF-8 size of
its chunk texts plus 1,024 bytes per vector; a store's is the sum over its files.
"""

from __future__ import annotations

import asyncio
import os
import time

import orjson

from ..engine.errors import EngineError
from ..store import Doc, Page, Store, StoreError
from . import chunking, extract, files
from . import vector_search as vs

KIND, FILE, BATCH, INGEST = "vector_store", "vector_store.file", "vector_store.file_batch", "vector_store.ingest"
STATUSES = ("in_progress", "completed", "failed", "cancelled")
MAX_FILE_TOKENS = 5_000_000  # OpenAI's per-file limit for file search
POLL_AFTER_MS = 100  # the ``openai-poll-after-ms`` hint while ingestion runs


def missing(message: str, param: str | None = None) -> EngineError:
    """A 404 in OpenAI's envelope."""
    e = EngineError(message, param=param, code="not_found")
    e.status = 404
    return e


def no_store(vs_id: str) -> EngineError:
    return missing(f"No vector store found with id '{vs_id}'.")


def no_item(vs_id: str, what: str, id: str) -> EngineError:
    return missing(f"No {what} found with id '{id}' in vector store '{vs_id}'.")


def _now() -> int:
    return int(time.time())


def _counts(states) -> dict:
    c = {s: 0 for s in STATUSES}
    for s in states:
        c[s] += 1
    return {**c, "total": sum(c.values())}


def _strip(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def file_key(vs_id: str, file_id: str) -> str:
    return f"{vs_id}:{file_id}"


def public_store(doc: Doc) -> Doc:
    out = _strip(doc)
    if out.get("expires_after") is None:
        out.pop("expires_after", None)
    exp = out.get("expires_at")
    if exp is not None and _now() >= exp:
        out["status"] = "expired"
    return out


def public_file(doc: Doc) -> Doc:
    out = _strip(doc)
    out["id"] = out.pop("file_id")
    return out


def public_batch(doc: Doc) -> Doc:
    return _strip(doc)


class VectorStores:
    """The vector store service at ``app.state.vector_stores``."""

    def __init__(self, state, concurrency: int = 4) -> None:
        self.state = state
        self.store: Store = state.store
        self._sem = asyncio.Semaphore(concurrency)
        self.cache = vs.IndexCache()
        state.jobs.register(INGEST, self._ingest, lambda _doc: True)

    # -- stores ----------------------------------------------------------------------
    async def create(self, *, name: str | None, description: str | None, metadata: dict | None,
                     expires_after: dict | None, file_ids: list[str], chunking_strategy: dict | None,
                     project_id: str | None = None) -> Doc:
        """A new store (its files start ingesting); its storage is accounted to ``project_id``."""
        strategy = chunking.strategy(chunking_strategy)
        names = [await self._filename(fid, "file_ids") for fid in file_ids]
        now = _now()
        doc = {"id": "vs_" + os.urandom(12).hex(), "object": "vector_store", "created_at": now,
               "name": name or "", "description": description, "usage_bytes": 0,
               "file_counts": _counts(()), "status": "completed", "last_active_at": now,
               "metadata": metadata or {}, "_files": {}, "_version": 0, "_project": project_id}
        _set_expiry(doc, expires_after)
        await self.store.put(KIND, doc)
        for fid, fname in zip(file_ids, names):
            await self._attach(doc["id"], fid, fname, None, strategy, None)
        return public_store(await self._store_doc(doc["id"]))

    async def _store_doc(self, vs_id: str) -> Doc:
        doc = await self.store.get(KIND, vs_id)
        if doc is None:
            raise no_store(vs_id)
        return doc

    async def get(self, vs_id: str) -> Doc:
        return public_store(await self._store_doc(vs_id))

    async def page(self, after, before, limit, order) -> Page:
        page = await self.store.page(KIND, after=after, before=before, limit=limit, order=order)
        page.items = [public_store(d) for d in page.items]
        return page

    async def modify(self, vs_id: str, changes: dict) -> Doc:
        def change(doc: Doc) -> Doc:
            if "name" in changes:
                doc["name"] = changes["name"] or ""
            if "metadata" in changes:
                doc["metadata"] = changes["metadata"] or {}
            if "expires_after" in changes:
                _set_expiry(doc, changes["expires_after"])
            return doc

        doc = await self.store.update(KIND, vs_id, change)
        if doc is None:
            raise no_store(vs_id)
        return public_store(doc)

    async def delete(self, vs_id: str) -> None:
        doc = await self._store_doc(vs_id)
        if not await self.store.delete(KIND, vs_id):
            raise no_store(vs_id)
        self._account(doc, -doc["usage_bytes"])
        self.cache.drop(vs_id)
        async for doc in self.store.scan(FILE, parent=vs_id):
            await self._forget_file(doc)
        async for doc in self.store.scan(BATCH, parent=vs_id):
            await self.store.delete(BATCH, doc["id"])

    # -- files -------------------------------------------------------------------------
    async def _filename(self, file_id: str, param: str) -> str:
        meta = await files.get_file(self.store, file_id)
        if meta is None:
            raise missing(f"No such File object: {file_id}", param)
        return meta.get("filename") or ""

    async def add_file(self, vs_id: str, file_id: str, attributes: dict | None,
                       chunking_strategy: dict | None) -> Doc:
        strategy = chunking.strategy(chunking_strategy)
        await self._store_doc(vs_id)
        name = await self._filename(file_id, "file_id")
        return public_file(await self._attach(vs_id, file_id, name, attributes, strategy, None))

    async def _attach(self, vs_id: str, file_id: str, filename: str, attributes: dict | None,
                      strategy, batch_id: str | None) -> Doc:
        """Store the file's record and its ingestion job, count it in, and start it."""
        key, run = file_key(vs_id, file_id), os.urandom(6).hex()
        old = await self.store.get(FILE, key)
        doc = {"id": key, "file_id": file_id, "object": "vector_store.file", "usage_bytes": 0,
               "created_at": _now(), "vector_store_id": vs_id, "status": "in_progress",
               "last_error": None, "chunking_strategy": strategy.as_dict(), "attributes": attributes or {},
               "_filename": filename, "_batch": batch_id, "_run": run}
        await self.store.put(FILE, doc, parent=vs_id)
        await self.store.put(INGEST, {"id": key, "run": run})
        await self._tally(vs_id, file_id, "in_progress", 0)
        if old is not None:
            await self._drop_blobs(vs_id, file_id, old.get("_run"))
            if old.get("_batch") and old["_batch"] != batch_id and old["status"] == "in_progress":
                # the earlier batch will not see this file finish: it counts as cancelled there
                await self.store.update(BATCH, old["_batch"], lambda d: _batch_state(d, file_id, "cancelled"))
        self.state.jobs.start(INGEST, key)
        return doc

    async def _file_doc(self, vs_id: str, file_id: str) -> Doc:
        doc = await self.store.get(FILE, file_key(vs_id, file_id))
        if doc is None:
            await self._store_doc(vs_id)  # the store's 404 first
            raise no_item(vs_id, "file", file_id)
        return doc

    async def get_file(self, vs_id: str, file_id: str) -> Doc:
        return public_file(await self._file_doc(vs_id, file_id))

    async def file_page(self, vs_id: str, after, before, limit, order, status: str | None,
                        batch_id: str | None = None) -> Page:
        await self._store_doc(vs_id)

        def match(d: Doc) -> bool:
            return (status is None or d["status"] == status) and (batch_id is None or d.get("_batch") == batch_id)

        page = await self.store.page(FILE, parent=vs_id, limit=limit, order=order, match=match,
                                     after=after and file_key(vs_id, after),
                                     before=before and file_key(vs_id, before))
        page.items = [public_file(d) for d in page.items]
        return page

    async def update_file(self, vs_id: str, file_id: str, attributes: dict | None) -> Doc:
        await self._file_doc(vs_id, file_id)

        def change(doc: Doc) -> Doc:
            doc["attributes"] = attributes or {}
            return doc

        doc = await self.store.update(FILE, file_key(vs_id, file_id), change)
        if doc is None:
            raise no_item(vs_id, "file", file_id)
        await self._bump(vs_id)
        return public_file(doc)

    async def delete_file(self, vs_id: str, file_id: str) -> None:
        doc = await self._file_doc(vs_id, file_id)
        await self._forget_file(doc)
        await self._tally(vs_id, file_id, None, 0)

    async def _forget_file(self, doc: Doc) -> None:
        await self.store.delete(FILE, doc["id"])
        await self.store.delete(INGEST, doc["id"])
        await self._drop_blobs(doc["vector_store_id"], doc["file_id"], doc.get("_run"))

    async def _drop_blobs(self, vs_id: str, file_id: str, run: str | None) -> None:
        for key in vs.blob_keys(vs_id, file_id, run):
            await self.store.delete_blob(key)

    async def file_content(self, vs_id: str, file_id: str) -> str:
        doc = await self._file_doc(vs_id, file_id)
        if doc["status"] != "completed":
            return ""
        try:
            return (await self.store.read_blob_bytes(vs.blob_keys(vs_id, file_id, doc["_run"])[2])).decode()
        except KeyError:
            return ""

    # -- batches -----------------------------------------------------------------------
    async def create_batch(self, vs_id: str, entries: list[tuple[str, dict | None, dict | None]]) -> Doc:
        """``entries``: (file id, attributes, chunking strategy) per file."""
        await self._store_doc(vs_id)
        checked = []
        for fid, attrs, raw in entries:
            strategy = chunking.strategy(raw)
            checked.append((fid, await self._filename(fid, "file_ids"), attrs, strategy))
        files = {fid: "in_progress" for fid, *_ in checked}
        doc = {"id": "vsfb_" + os.urandom(12).hex(), "object": "vector_store.files_batch",
               "created_at": _now(), "vector_store_id": vs_id, "status": "in_progress",
               "file_counts": _counts(files.values()), "_files": files}
        await self.store.put(BATCH, doc, parent=vs_id)
        for fid, name, attrs, strategy in checked:
            await self._attach(vs_id, fid, name, attrs, strategy, doc["id"])
        return public_batch(await self._batch_doc(vs_id, doc["id"]))

    async def _batch_doc(self, vs_id: str, batch_id: str) -> Doc:
        doc = await self.store.get(BATCH, batch_id)
        if doc is None or doc["vector_store_id"] != vs_id:
            await self._store_doc(vs_id)
            raise no_item(vs_id, "file batch", batch_id)
        return doc

    async def get_batch(self, vs_id: str, batch_id: str) -> Doc:
        return public_batch(await self._batch_doc(vs_id, batch_id))

    async def cancel_batch(self, vs_id: str, batch_id: str) -> Doc:
        doc = await self._batch_doc(vs_id, batch_id)
        if doc["status"] != "in_progress":
            raise EngineError(f"Cannot cancel a batch with status '{doc['status']}'.", code="invalid_state")
        for fid, status in doc["_files"].items():
            if status == "in_progress":
                await self._finish(vs_id, fid, None, "cancelled", 0, None, batch_id=batch_id)
        doc = await self.store.update(BATCH, batch_id, lambda d: _batch_state(d, None, None, cancel=True))
        return public_batch(doc)

    # -- bookkeeping ---------------------------------------------------------------------
    async def _tally(self, vs_id: str, file_id: str, status: str | None, usage: int) -> None:
        """Record one file's status and usage in its store (None: the file is gone)."""
        before = []

        def change(doc: Doc) -> Doc:
            before.append(doc["usage_bytes"])
            files = doc["_files"]
            if status is None:
                files.pop(file_id, None)
            else:
                files[file_id] = [status, usage]
            doc["file_counts"] = _counts(s for s, _ in files.values())
            doc["usage_bytes"] = sum(b for _, b in files.values())
            doc["status"] = "in_progress" if doc["file_counts"]["in_progress"] else "completed"
            doc["_version"] = doc.get("_version", 0) + 1
            return doc

        doc = await self.store.update(KIND, vs_id, change)
        if doc is not None:
            self._account(doc, doc["usage_bytes"] - before[-1])

    def _account(self, doc: Doc, delta: int) -> None:
        """Report a change of the store's bytes to the usage API (a level: +/- bytes)."""
        usage = getattr(self.state, "usage", None)
        if delta and usage is not None:
            usage.record("vector_stores", "", project_id=doc.get("_project"), usage_bytes=delta)

    async def _bump(self, vs_id: str) -> None:
        await self.store.update(KIND, vs_id, lambda d: {**d, "_version": d.get("_version", 0) + 1})

    async def _finish(self, vs_id: str, file_id: str, run: str | None, status: str, usage: int,
                      error: dict | None, batch_id: str | None = None) -> bool:
        """Move an in-progress file (of run ``run``, or of batch ``batch_id``) to its final
        state and count it. False if it was no longer in progress (cancelled, deleted or
        re-attached)."""
        key = file_key(vs_id, file_id)
        done = []

        def change(doc: Doc) -> Doc | None:
            if (doc["status"] != "in_progress" or (run is not None and doc.get("_run") != run)
                    or (batch_id is not None and doc.get("_batch") != batch_id)):
                return None
            doc.update(status=status, usage_bytes=usage, last_error=error)
            done.append(doc)
            return doc

        await self.store.update(FILE, key, change)
        await self.store.delete(INGEST, key)
        if not done:
            return False
        await self._tally(vs_id, file_id, status, usage)
        batch_id = done[0].get("_batch")
        if batch_id:
            await self.store.update(BATCH, batch_id, lambda d: _batch_state(d, file_id, status))
        return True

    # -- ingestion ---------------------------------------------------------------------
    async def _ingest(self, key: str) -> None:
        job = await self.store.get(INGEST, key)
        doc = await self.store.get(FILE, key)
        if job is None:
            return
        if doc is None or doc["status"] != "in_progress" or doc.get("_run") != job["run"]:
            await self.store.delete(INGEST, key)
            return
        vs_id, fid, run = doc["vector_store_id"], doc["file_id"], job["run"]
        async with self._sem:
            try:
                status, usage, error = await self._index(vs_id, fid, run, doc)
            except (StoreError, asyncio.CancelledError):
                raise  # retried on the next scan / after a restart
            except Exception as e:  # noqa: BLE001 - whatever it is, the file fails rather than retrying forever
                status, usage, error = "failed", 0, {"code": "server_error", "message": str(e)}
        if not await self._finish(vs_id, fid, run, status, usage, error):
            await self._drop_blobs(vs_id, fid, run)

    async def _index(self, vs_id: str, fid: str, run: str, doc: Doc) -> tuple[str, int, dict | None]:
        try:
            if await files.get_file(self.store, fid) is None:
                raise KeyError(fid)
            data = await self.store.read_blob_bytes(fid)
        except KeyError:
            return "failed", 0, {"code": "invalid_file", "message": f"The file {fid} no longer exists."}
        s = doc["chunking_strategy"]["static"]
        strategy = chunking.Strategy(s["max_chunk_size_tokens"], s["chunk_overlap_tokens"])
        loop = asyncio.get_running_loop()
        try:
            text, texts, matrix = await loop.run_in_executor(None, _process, doc["_filename"], data, strategy)
        except extract.ExtractError as e:
            return "failed", 0, {"code": e.code, "message": e.message}
        chunks_key, vectors_key, text_key = vs.blob_keys(vs_id, fid, run)
        await self.store.write_blob(chunks_key, orjson.dumps(texts))
        await self.store.write_blob(vectors_key, matrix.astype("<f4").tobytes())
        await self.store.write_blob(text_key, text.encode())
        usage = sum(len(t.encode()) for t in texts) + len(texts) * vs.VECTOR_BYTES
        return "completed", usage, None

    # -- search ------------------------------------------------------------------------
    async def search(self, vs_id: str, query: str | list[str], *, max_num_results: int = 10,
                     filters: dict | None = None, ranking_options: dict | None = None,
                     rewrite_query: bool = False) -> tuple[list[str], list[dict]]:
        """(the queries searched for, the result items, best first)."""
        if not isinstance(max_num_results, int) or not 1 <= max_num_results <= vs.MAX_RESULTS:
            raise EngineError(f"Invalid 'max_num_results': must be between 1 and {vs.MAX_RESULTS}, "
                              f"got {max_num_results!r}.", param="max_num_results", code="invalid_value")
        queries = [query] if isinstance(query, str) else list(query)
        if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
            raise EngineError("Invalid 'query': expected a non-empty string or a non-empty array of "
                              "non-empty strings.", param="query", code="invalid_value")
        threshold = _ranking(ranking_options)
        allowed = vs.compile_filter(filters) if filters is not None else None
        doc = await self._store_doc(vs_id)
        if rewrite_query:
            queries = [vs.rewrite(q) for q in queries]
        index = await self.cache.get(self.store, doc)
        if len(index.texts) > 2048:  # keep the loop responsive for big stores
            items = await asyncio.get_running_loop().run_in_executor(
                None, vs.rank, index, queries, max_num_results, threshold, allowed)
        else:
            items = vs.rank(index, queries, max_num_results, threshold, allowed)
        now = _now()
        if doc.get("last_active_at") != now:
            await self.store.update(KIND, vs_id, lambda d: _touch(d, now))
        return queries, items


async def search(state, vector_store_id: str, query: str | list[str], *, max_num_results: int = 10,
                 filters: dict | None = None, ranking_options: dict | None = None) -> list[dict]:
    """The best chunks of a vector store for ``query``, as ``vector_store.search_results.page``
    items (``file_id``, ``filename``, ``score``, ``attributes``, ``content``). For the
    Responses ``file_search`` tool; raises an ``EngineError`` (404 unknown store, 400 bad
    filters or options)."""
    _, items = await state.vector_stores.search(vector_store_id, query, max_num_results=max_num_results,
                                                filters=filters, ranking_options=ranking_options)
    return items


def _ranking(options: dict | None) -> float:
    if not options:
        return 0.0
    ranker = options.get("ranker", "auto")
    if ranker not in vs.RANKERS:
        raise EngineError(f"Invalid 'ranking_options.ranker': expected one of {', '.join(vs.RANKERS)}, "
                          f"got {ranker!r}.", param="ranking_options.ranker", code="invalid_value")
    threshold = options.get("score_threshold", 0.0)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise EngineError(f"Invalid 'ranking_options.score_threshold': must be between 0 and 1, got "
                          f"{threshold!r}.", param="ranking_options.score_threshold", code="invalid_value")
    return float(threshold)


def _process(filename: str, data: bytes, strategy):
    """Extract, chunk and embed one file (on a worker thread): (text, chunks, vectors)."""
    from ..engine.tokenizer import get_tokenizer

    text = extract.extract_text(filename, data)
    tok = get_tokenizer("cl100k_base")  # text-embedding-3-large's
    ids = tok.encode(text)
    if len(ids) > MAX_FILE_TOKENS:
        raise extract.ExtractError("invalid_file", f"The file has more than {MAX_FILE_TOKENS} tokens.")
    texts, _ = chunking.chunk(tok, text, strategy, ids)
    return text, texts, vs.embed(texts)


def _set_expiry(doc: Doc, expires_after: dict | None) -> None:
    doc["expires_after"] = expires_after
    doc["expires_at"] = None if expires_after is None else doc["last_active_at"] + expires_after["days"] * 86400


def _touch(doc: Doc, now: int) -> Doc:
    doc["last_active_at"] = now
    if doc.get("expires_after"):
        doc["expires_at"] = now + doc["expires_after"]["days"] * 86400
    return doc


def _batch_state(doc: Doc, file_id: str | None, status: str | None, cancel: bool = False) -> Doc:
    if file_id is not None and file_id in doc["_files"]:
        doc["_files"][file_id] = status
    doc["file_counts"] = counts = _counts(doc["_files"].values())
    if cancel:
        doc["status"] = "cancelled"
    elif doc["status"] == "in_progress" and not counts["in_progress"]:
        doc["status"] = "failed" if counts["failed"] == counts["total"] and counts["total"] else "completed"
    return doc
