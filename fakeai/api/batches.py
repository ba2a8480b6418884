"""``/v1/batches``: create, retrieve, list, cancel. The work runs as a background job
(``fakeai.services.batch_runner``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..schemas.files import CreateBatchRequest
from ..services import batches
from .body import parse, path_doc, read_json, request_body
from .common import dumps, json_response
from .files import service_errors
from .listing import cursor, list_object

router = APIRouter(tags=["batches"])

_CREATE_SCHEMA = request_body(CreateBatchRequest)


@router.post("/v1/batches", openapi_extra=_CREATE_SCHEMA)
async def create_batch(request: Request):
    state = request.app.state
    req = parse(CreateBatchRequest, await read_json(request), state.settings.strict_params)
    headers = [(k, request.headers[k]) for k in batches.FORWARDED_HEADERS if k in request.headers]
    key_id, project_id, user_id, _ = state.usage.identity(request)
    identity = {"api_key_id": key_id, "project_id": project_id, "user_id": user_id,
                "authenticated": "api_key_id" in request.scope.get("state", {})}
    with service_errors():
        doc = await batches.create_batch(
            state.store, input_file_id=req.input_file_id, endpoint=req.endpoint,
            completion_window=req.completion_window, metadata=req.metadata,
            output_ttl_s=req.output_expires_after.seconds if req.output_expires_after else None,
            headers=headers, identity=identity)
    state.jobs.start(batches.KIND, doc["id"])
    return json_response(dumps(doc))


@router.get("/v1/batches")
async def list_batches(request: Request):
    c = cursor(request, default_limit=20, max_limit=100)
    page = await batches.list_batches(request.app.state.store, after=c.after, before=c.before,
                                      limit=c.limit, order=c.order)
    return json_response(dumps(list_object(page)))


@router.get("/v1/batches/{batch_id}", openapi_extra=path_doc("batch_id"))
async def retrieve_batch(request: Request):
    batch_id = request.path_params["batch_id"]
    with service_errors():
        doc = await batches.get_batch(request.app.state.store, batch_id)
    return json_response(dumps(batches.render(doc)))


@router.post("/v1/batches/{batch_id}/cancel", openapi_extra=path_doc("batch_id"))
async def cancel_batch(request: Request):
    batch_id = request.path_params["batch_id"]
    state = request.app.state
    with service_errors():
        doc = await batches.cancel_batch(state.store, batch_id)
    state.batches.wake(batch_id)
    state.jobs.start(batches.KIND, batch_id)  # finish it here if no process runs it
    return json_response(dumps(doc))
