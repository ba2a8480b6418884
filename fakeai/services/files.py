"""Files: stored documents of kind ``file`` whose bytes are a store blob keyed by the file id.

Other services read and write files through these functions, never through HTTP:

* ``create_file(store, data, filename=, purpose=)`` stores bytes (or an async
  stream of chunks) as a new file and returns its public object (batch outputs,
  fine-tuning result files);
* ``get_file(store, id)`` the public object, or None if missing or expired;
* ``require_file(store, id, param=)`` the same, or a 404 ``ServiceError``;
* ``read_content(store, id)`` / ``read_bytes(store, id)`` / ``read_lines(store, id)``
  the content as a stream of chunks, as bytes, or as numbered JSONL lines.

Uploads arrive in two steps because a multipart form may name its ``purpose``
after the file part: ``write_content`` streams the bytes to the store (checking
JSONL as they pass when the purpose is already known), then ``finish_file``
checks what is left to check and records the file. Nothing is acknowledged
before both the blob and the document are durably written.

A crash between the two must not leave bytes that no file owns: ``write_content``
first records a ``file.pending`` note naming the writing process, ``finish_file`` and
``discard`` remove it, and at start-up ``sweep_pending`` deletes the bytes of every note
whose process is gone (a process of this host that exited, or any note a day old).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from ..store import BlobTooLarge, Doc, Page, Store, StoreError
from .errors import ServiceError, not_found
from .jobs import dead_here, process_owner
from .jsonl import LineCheck, lines_of

KIND = "file"
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
OUTPUT_PURPOSES = ("assistants_output", "batch_output", "fine-tune-results")
CHECKED_PURPOSES = ("batch", "fine-tune")  # JSONL validated on upload
MIN_TTL_S, MAX_TTL_S = 3600, 30 * 86400
BATCH_FILE_TTL_S = 30 * 86400  # OpenAI: batch files expire after 30 days unless told otherwise
CHUNK = 1 << 20  # what a blob is written in: fewer, larger writes
PENDING = "file.pending"  # bytes being written for a file not recorded yet
PENDING_MAX_AGE_S = 86400  # a note this old is stale whoever wrote it (a replica on another host)


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def public(doc: Doc) -> Doc:
    """The wire object: stored documents keep private fields under ``_`` names."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def check_purpose(purpose: str | None, allowed: tuple[str, ...] = PURPOSES) -> str:
    if purpose is None or purpose == "":
        raise ServiceError(400, "Missing required parameter: 'purpose'.", param="purpose",
                           code="missing_required_parameter")
    if purpose not in allowed:
        raise ServiceError(400, f"Invalid value for 'purpose': {purpose!r}. Supported values are: "
                           f"{', '.join(repr(p) for p in allowed)}.", param="purpose", code="invalid_value")
    return purpose


def check_expires_after(anchor: object, seconds: object, param: str = "expires_after") -> int:
    """Seconds until expiry from an ``expires_after`` ``{anchor, seconds}`` pair."""
    if anchor != "created_at":
        raise ServiceError(400, f"Invalid value for '{param}.anchor': expected 'created_at'.",
                           param=f"{param}.anchor", code="invalid_value")
    bad_type = ServiceError(400, f"Invalid type for '{param}.seconds': expected an integer.",
                            param=f"{param}.seconds", code="invalid_type")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, str)):
        raise bad_type
    try:
        n = int(seconds)  # a form field arrives as text
    except ValueError:
        raise bad_type from None
    if not MIN_TTL_S <= n <= MAX_TTL_S:
        raise ServiceError(400, f"Invalid '{param}.seconds': must be between {MIN_TTL_S} and {MAX_TTL_S}, "
                           f"got {n}.", param=f"{param}.seconds", code="invalid_value")
    return n


def too_large(limit: int) -> ServiceError:
    return ServiceError(413, f"File too large: the maximum file size is {limit} bytes.", param="file",
                        code="file_too_large")


# -- writing -------------------------------------------------------------------------
@dataclass(slots=True)
class Content:
    """Bytes written to the store for a file not recorded yet."""

    id: str
    size: int
    md5: str
    checked: str | None  # the purpose whose JSONL check already ran over the bytes


async def rechunk(chunks: AsyncIterable[bytes] | bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    """The same bytes in pieces of about ``size`` (the store writes each piece at once)."""
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        data = bytes(chunks)
        for i in range(0, len(data), size):
            yield data[i:i + size]
        return
    buf: list[bytes] = []
    n = 0
    async for chunk in chunks:
        buf.append(chunk)
        n += len(chunk)
        if n >= size:
            yield b"".join(buf)
            buf, n = [], 0
    if buf:
        yield b"".join(buf)


async def _checked(chunks: AsyncIterable[bytes], check: LineCheck) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        check.feed(chunk)
        yield chunk
    check.finish()


async def write_content(store: Store, chunks: AsyncIterable[bytes] | bytes, *, limit: int | None = None,
                        purpose: str | None = None, file_id: str | None = None) -> Content:
    """Stream ``chunks`` to a new blob (413 past ``limit``; 400 at the first bad JSONL
    line when ``purpose`` is known and checked). Nothing is left behind on error."""
    file_id = file_id or new_id("file-")
    stream = rechunk(chunks)
    check = LineCheck(purpose) if purpose in CHECKED_PURPOSES else None
    if check is not None:
        stream = _checked(stream, check)
    await store.put(PENDING, {"id": file_id, "owner": process_owner(), "created_at": int(time.time())})
    try:
        info = await store.write_blob(file_id, stream, limit=limit)
    except BaseException as e:
        try:
            await store.delete(PENDING, file_id)
        except StoreError:
            pass  # swept at the next start
        if isinstance(e, BlobTooLarge):
            raise too_large(e.limit) from None
        raise
    return Content(file_id, info.size, info.md5, purpose if check is not None else None)


async def check_content(store: Store, file_id: str, purpose: str) -> None:
    """Run the upload check of ``purpose`` over stored bytes (400 naming the bad line)."""
    if purpose not in CHECKED_PURPOSES:
        return
    check = LineCheck(purpose)
    async for chunk in store.read_blob(file_id):
        check.feed(chunk)
    check.finish()


async def finish_file(store: Store, content: Content, *, filename: str, purpose: str,
                      expires_after_s: int | None = None, created_at: int | None = None) -> Doc:
    """Record written ``content`` as a file (checking its JSONL first if that has not
    run yet). On a check failure the bytes are deleted and the 400 raised."""
    try:
        if content.checked != purpose:
            await check_content(store, content.id, purpose)
    except ServiceError:
        await discard(store, content)
        raise
    now = int(time.time()) if created_at is None else created_at
    if expires_after_s is None and purpose == "batch":
        expires_after_s = BATCH_FILE_TTL_S
    doc: Doc = {"id": content.id, "object": "file", "bytes": content.size, "created_at": now,
                "filename": filename, "purpose": purpose, "status": "processed"}
    if expires_after_s is not None:
        doc["expires_at"] = now + expires_after_s
    doc["_md5"] = content.md5
    await store.put(KIND, doc)
    await store.delete(PENDING, content.id)
    return public(doc)


async def discard(store: Store, content: Content) -> None:
    await store.delete_blob(content.id)
    await store.delete(PENDING, content.id)


async def sweep_pending(store: Store) -> int:
    """Delete the bytes of files whose writer died before recording them (see the module
    notes); returns how many. Run at start-up."""
    now, swept = time.time(), 0
    stale = [d async for d in store.scan(PENDING)
             if dead_here(d["owner"]) or now - d["created_at"] > PENDING_MAX_AGE_S]
    for note in stale:
        if await store.get(KIND, note["id"]) is None:
            await store.delete_blob(note["id"])
            swept += 1
        await store.delete(PENDING, note["id"])
    return swept


async def create_file(store: Store, data: AsyncIterable[bytes] | bytes, *, filename: str, purpose: str,
                      limit: int | None = None, expires_after_s: int | None = None,
                      file_id: str | None = None) -> Doc:
    """Store ``data`` as a new file (for services: batch outputs, fine-tuning results).
    Upload purposes get their upload checks; ``file_id`` fixes the id (a retried write
    of the same file replaces it)."""
    content = await write_content(store, data, limit=limit, purpose=purpose, file_id=file_id)
    return await finish_file(store, content, filename=filename, purpose=purpose,
                             expires_after_s=expires_after_s)


# -- reading ---------------------------------------------------------------------------
def _expired(doc: Doc, now: float) -> bool:
    exp = doc.get("expires_at")
    return exp is not None and exp <= now


async def get_file(store: Store, file_id: str) -> Doc | None:
    """The public file object, or None if there is none (an expired file is deleted)."""
    doc = await store.get(KIND, file_id)
    if doc is None:
        return None
    if _expired(doc, time.time()):
        await delete_file(store, file_id)
        return None
    return public(doc)


async def require_file(store: Store, file_id: str, param: str | None = None) -> Doc:
    doc = await get_file(store, file_id)
    if doc is None:
        raise not_found("File", file_id, param)
    return doc


async def list_files(store: Store, *, after: str | None, limit: int, order: str,
                     purpose: str | None = None) -> Page:
    now = time.time()

    def keep(doc: Doc) -> bool:
        return (purpose is None or doc["purpose"] == purpose) and not _expired(doc, now)

    page = await store.page(KIND, after=after, limit=limit, order=order, match=keep)
    page.items = [public(d) for d in page.items]
    return page


async def delete_file(store: Store, file_id: str) -> bool:
    if not await store.delete(KIND, file_id):
        return False
    await store.delete_blob(file_id)
    return True


def read_content(store: Store, file_id: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    """A file's bytes, streamed (check the file exists first: ``require_file``)."""
    return store.read_blob(file_id, chunk_size)


async def read_bytes(store: Store, file_id: str) -> bytes:
    await require_file(store, file_id)
    return await store.read_blob_bytes(file_id)


async def read_lines(store: Store, file_id: str) -> AsyncIterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a (JSONL) file: ``(line_number, line_bytes)``, 1-based."""
    async for item in lines_of(store.read_blob(file_id)):
        yield item
