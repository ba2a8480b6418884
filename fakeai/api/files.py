"""``/v1/files``: upload (multipart, streamed to the store), list, retrieve, content, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import contextmanager

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from ..services import files
from ..services.errors import ServiceError
from .body import path_doc
from .common import dumps, json_response, produces
from .errors import APIError
from .listing import cursor, list_object
from .multipart import MultipartStream

router = APIRouter(tags=["files"])

FORM_OVERHEAD = 64 * 1024  # room for the form fields and part headers around the file itself

_UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "purpose"],
    "properties": {"file": {"type": "string", "format": "binary"},
                   "purpose": {"type": "string", "enum": list(files.PURPOSES)},
                   "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
                   "expires_after[seconds]": {"type": "integer"}}}}}}}


@contextmanager
def service_errors():
    """Turn a service's refusal into OpenAI's error envelope."""
    try:
        yield
    except ServiceError as e:
        raise APIError(e.status, e.message, type=e.type, param=e.param, code=e.code) from None


def early_413(request: Request, limit: int, what: str = "file") -> None:
    """Refuse at once a body whose declared length cannot fit ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise APIError(413, f"File too large: the maximum {what} size is {limit} bytes.", param="file",
                       code="file_too_large", headers={"connection": "close"})


async def refuse(form: MultipartStream, error: APIError) -> APIError:
    """Let the client finish sending before the error reply, or close the connection."""
    if not await form.drain():
        error.headers = {**(error.headers or {}), "connection": "close"}
    return error


@router.post("/v1/files", openapi_extra=_UPLOAD_SCHEMA)
async def create_file(request: Request):
    state = request.app.state
    store, limit = state.store, state.settings.max_file_bytes
    early_413(request, limit)
    form = MultipartStream(request)
    fields: dict[str, str] = {}
    content = filename = doc = None
    try:
        with service_errors():
            async for part in form.parts():
                if part.name != "file":
                    fields[part.name] = await part.text()
                    continue
                if content is not None:
                    raise APIError(400, "Only one 'file' may be uploaded per request.", param="file")
                purpose = fields.get("purpose")
                if purpose is not None:
                    files.check_purpose(purpose)
                filename = part.filename or "file"
                content = await files.write_content(store, part.data(), limit=limit, purpose=purpose)
            purpose = files.check_purpose(fields.get("purpose"))
            if content is None:
                raise APIError(400, "Missing required parameter: 'file'.", param="file",
                               code="missing_required_parameter")
            ttl = _expires_after(fields)
            doc = await files.finish_file(store, content, filename=filename, purpose=purpose,
                                          expires_after_s=ttl)
    except APIError as e:
        raise await refuse(form, e) from None
    finally:
        if doc is None and content is not None:  # refused or failed: keep no orphan bytes
            await files.discard(store, content)
    return json_response(dumps(doc))


def _expires_after(fields: dict[str, str]) -> int | None:
    anchor, seconds = fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    return files.check_expires_after(anchor, seconds)


@router.get("/v1/files")
async def list_files(request: Request):
    c = cursor(request, default_limit=10000, max_limit=10000)
    purpose = request.query_params.get("purpose") or None
    page = await files.list_files(request.app.state.store, after=c.after, limit=c.limit, order=c.order,
                                  purpose=purpose)
    return json_response(dumps(list_object(page)))


@router.get("/v1/files/{file_id}", openapi_extra=path_doc("file_id"))
async def retrieve_file(request: Request):
    file_id = request.path_params["file_id"]
    with service_errors():
        doc = await files.require_file(request.app.state.store, file_id)
    return json_response(dumps(doc))


@router.delete("/v1/files/{file_id}", openapi_extra=path_doc("file_id"))
async def delete_file(request: Request):
    file_id = request.path_params["file_id"]
    store = request.app.state.store
    with service_errors():
        await files.require_file(store, file_id)
    await files.delete_file(store, file_id)
    return json_response(dumps({"id": file_id, "object": "file", "deleted": True}))


@router.get("/v1/files/{file_id}/content", openapi_extra=path_doc("file_id"),
            **produces("application/octet-stream", json=False))
async def file_content(request: Request):
    file_id = request.path_params["file_id"]
    store = request.app.state.store
    with service_errors():
        doc = await files.require_file(store, file_id)
    chunks = files.read_content(store, file_id)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except KeyError:  # deleted in the meantime
        raise APIError(404, f"No such File object: {file_id}", code="not_found") from None
    return StreamingResponse(_prepend(first, chunks), media_type="application/octet-stream",
                             headers={"content-length": str(doc["bytes"])})


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk
