"""``/v1/uploads``: create, add parts (multipart ``data``, streamed), complete (md5), cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..schemas.files import CompleteUploadRequest, CreateUploadRequest
from ..services import uploads
from .body import parse, path_doc, read_json, request_body
from .common import dumps, json_response
from .errors import APIError
from .files import early_413, refuse, service_errors
from .multipart import MultipartStream

router = APIRouter(tags=["uploads"])

_CREATE_SCHEMA = request_body(CreateUploadRequest)
_COMPLETE_SCHEMA = path_doc("upload_id", body=CompleteUploadRequest)
_PART_SCHEMA = {**path_doc("upload_id"), "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["data"], "properties": {"data": {"type": "string", "format": "binary"}}}}}}}


@router.post("/v1/uploads", openapi_extra=_CREATE_SCHEMA)
async def create_upload(request: Request):
    state = request.app.state
    req = parse(CreateUploadRequest, await read_json(request), state.settings.strict_params)
    with service_errors():
        doc = await uploads.create_upload(
            state.store, filename=req.filename, purpose=req.purpose, size=req.bytes, mime_type=req.mime_type,
            file_ttl_s=req.expires_after.seconds if req.expires_after else None,
            max_bytes=state.settings.max_upload_bytes)
    return json_response(dumps(doc))


@router.post("/v1/uploads/{upload_id}/parts", openapi_extra=_PART_SCHEMA)
async def add_upload_part(request: Request):
    upload_id = request.path_params["upload_id"]
    store = request.app.state.store
    early_413(request, uploads.PART_LIMIT, "part")
    form = MultipartStream(request)
    doc = None
    try:
        with service_errors():
            async for part in form.parts():
                if part.name != "data":
                    await part.skip()
                    continue
                if doc is not None:
                    raise APIError(400, "Only one 'data' part may be sent per request.", param="data")
                doc = await uploads.add_part(store, upload_id, part.data())
            if doc is None:
                raise APIError(400, "Missing required parameter: 'data'.", param="data",
                               code="missing_required_parameter")
    except APIError as e:
        raise await refuse(form, e) from None
    return json_response(dumps(doc))


@router.post("/v1/uploads/{upload_id}/complete", openapi_extra=_COMPLETE_SCHEMA)
async def complete_upload(request: Request):
    upload_id = request.path_params["upload_id"]
    state = request.app.state
    req = parse(CompleteUploadRequest, await read_json(request), state.settings.strict_params)
    with service_errors():
        doc = await uploads.complete(state.store, upload_id, req.part_ids, req.md5)
    return json_response(dumps(doc))


@router.post("/v1/uploads/{upload_id}/cancel", openapi_extra=path_doc("upload_id"))
async def cancel_upload(request: Request):
    upload_id = request.path_params["upload_id"]
    with service_errors():
        doc = await uploads.cancel(request.app.state.store, upload_id)
    return json_response(dumps(doc))
