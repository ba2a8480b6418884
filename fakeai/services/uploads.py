"""Uploads: a file sent in parts (each up to 64 MB, in any order, even in parallel),
assembled on completion into a normal file.

Parts are blobs ``<upload_id>/<part_id>`` with a ``upload_part`` document under
the upload. ``complete`` streams the parts, in the order given, into the new
file's blob (computing its md5 on the way, checked against the client's), then
records the file and marks the upload completed in one atomic update, so two
racing completions cannot both win. An upload expires an hour after it was
created, as OpenAI's do; expired and cancelled uploads drop their parts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator

from ..store import BlobTooLarge, Doc, Store
from . import files
from .errors import ServiceError

KIND = "upload"
PART_KIND = "upload_part"
TTL_S = 3600
PART_LIMIT = 64 * 1024 * 1024


def _part_key(upload_id: str, part_id: str) -> str:
    return f"{upload_id}/{part_id}"


async def create_upload(store: Store, *, filename: str, purpose: str, size: int, mime_type: str,
                        file_ttl_s: int | None, max_bytes: int) -> Doc:
    files.check_purpose(purpose)
    if size > max_bytes:
        raise ServiceError(400, f"Invalid 'bytes': an Upload can be at most {max_bytes} bytes, got {size}.",
                           param="bytes", code="invalid_value")
    now = int(time.time())
    doc: Doc = {"id": files.new_id("upload_"), "object": "upload", "bytes": size, "created_at": now,
                "filename": filename, "purpose": purpose, "status": "pending", "expires_at": now + TTL_S,
                "file": None, "_mime_type": mime_type, "_file_ttl_s": file_ttl_s}
    await store.put(KIND, doc)
    return files.public(doc)


async def _pending(store: Store, upload_id: str) -> Doc:
    """The upload, which must still take parts (400 otherwise; 404 if unknown)."""
    doc = await store.get(KIND, upload_id)
    if doc is None:
        raise ServiceError(404, f"No such Upload object: {upload_id}", param="upload_id", code="not_found")
    if doc["status"] == "pending" and time.time() >= doc["expires_at"]:
        doc = await _end(store, upload_id, "expired")
    if doc["status"] != "pending":
        raise ServiceError(400, f"Upload {upload_id} is {doc['status']}: it no longer accepts changes.",
                           param="upload_id", code="invalid_upload_state")
    return doc


async def _end(store: Store, upload_id: str, status: str) -> Doc:
    """Move a pending upload to ``status`` (cancelled or expired) and drop its parts."""

    def change(d: Doc) -> Doc | None:
        if d["status"] != "pending":
            return None
        d["status"] = status
        return d

    doc = await store.update(KIND, upload_id, change)
    await _drop_parts(store, upload_id)
    return doc


async def _drop_parts(store: Store, upload_id: str) -> None:
    parts = [p async for p in store.scan(PART_KIND, parent=upload_id)]
    for p in parts:
        await store.delete_blob(_part_key(upload_id, p["id"]))
        await store.delete(PART_KIND, p["id"])


async def add_part(store: Store, upload_id: str, chunks: AsyncIterable[bytes]) -> Doc:
    await _pending(store, upload_id)
    part_id = files.new_id("part_")
    key = _part_key(upload_id, part_id)
    try:
        info = await store.write_blob(key, files.rechunk(chunks), limit=PART_LIMIT)
    except BlobTooLarge:
        raise ServiceError(413, f"Upload part too large: a part can be at most {PART_LIMIT} bytes.",
                           param="data", code="file_too_large") from None
    doc: Doc = {"id": part_id, "object": "upload.part", "created_at": int(time.time()),
                "upload_id": upload_id, "_bytes": info.size}
    try:
        await _pending(store, upload_id)  # not cancelled or completed while the part streamed in
        await store.put(PART_KIND, doc, parent=upload_id)
    except BaseException:
        await store.delete_blob(key)
        raise
    return files.public(doc)


async def complete(store: Store, upload_id: str, part_ids: list[str], md5: str | None) -> Doc:
    upload = await _pending(store, upload_id)
    if not part_ids:
        raise ServiceError(400, "Invalid 'part_ids': expected at least one Part ID.", param="part_ids",
                           code="empty_array")
    if len(set(part_ids)) != len(part_ids):
        raise ServiceError(400, "Invalid 'part_ids': a Part ID appears more than once.", param="part_ids",
                           code="invalid_value")
    total = 0
    for pid in part_ids:
        part = await store.get(PART_KIND, pid)
        if part is None or part["upload_id"] != upload_id:
            raise ServiceError(400, f"Invalid 'part_ids': {pid} is not a Part of Upload {upload_id}.",
                               param="part_ids", code="invalid_value")
        total += part["_bytes"]
    if total != upload["bytes"]:
        raise ServiceError(400, f"The number of bytes uploaded upon completion ({total}) does not match the "
                           f"number of bytes specified when creating the Upload ({upload['bytes']}).",
                           param="part_ids", code="bytes_mismatch")
    content = await files.write_content(store, _concat(store, upload_id, part_ids), purpose=upload["purpose"])
    try:
        if md5 is not None and md5.strip().lower() != content.md5:
            raise ServiceError(400, f"The md5 checksum of the uploaded bytes ({content.md5}) does not match "
                               f"the md5 given ({md5}).", param="md5", code="md5_mismatch")
        file = await files.finish_file(store, content, filename=upload["filename"], purpose=upload["purpose"],
                                       expires_after_s=upload["_file_ttl_s"])
    except BaseException:
        await files.discard(store, content)
        raise

    def change(d: Doc) -> Doc | None:
        if d["status"] != "pending":
            return None
        d["status"], d["file"] = "completed", file
        return d

    doc = await store.update(KIND, upload_id, change)
    if doc["status"] != "completed" or doc["file"]["id"] != file["id"]:  # lost a race
        await files.delete_file(store, file["id"])
        raise ServiceError(400, f"Upload {upload_id} is {doc['status']}: it no longer accepts changes.",
                           param="upload_id", code="invalid_upload_state")
    await _drop_parts(store, upload_id)
    return files.public(doc)


async def _concat(store: Store, upload_id: str, part_ids: list[str]) -> AsyncIterator[bytes]:
    for pid in part_ids:
        async for chunk in store.read_blob(_part_key(upload_id, pid)):
            yield chunk


async def cancel(store: Store, upload_id: str) -> Doc:
    await _pending(store, upload_id)
    doc = await _end(store, upload_id, "cancelled")
    if doc["status"] != "cancelled":
        raise ServiceError(400, f"Upload {upload_id} is {doc['status']}: it can no longer be cancelled.",
                           param="upload_id", code="invalid_upload_state")
    return files.public(doc)
