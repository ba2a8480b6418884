"""``/v1/vector_stores``: stores, their files and file batches, and search (wire format
only; the work is ``fakeai.services.vector_stores``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..schemas.vector_stores import (
    CreateVectorStoreFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    UpdateVectorStoreFileAttributesRequest,
    UpdateVectorStoreRequest,
    VectorStoreSearchRequest,
)
from ..services.vector_stores import POLL_AFTER_MS, STATUSES, VectorStores
from .body import parse, read_json, request_body
from .common import dumps, json_response
from .errors import APIError
from .listing import cursor, list_object

router = APIRouter(tags=["vector stores"])

_BASE = "/v1/vector_stores"


def _params(*names: str) -> dict:
    return {"parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                           for n in names]}


def _doc(*names: str, body=None) -> dict:
    """OpenAPI extras: hand-documented path parameters (no typed parameters: see api/models.py)."""
    out = _params(*names)
    if body is not None:
        out.update(request_body(body))
    return out


def _svc(request: Request) -> VectorStores:
    return request.app.state.vector_stores


async def _body(request: Request, model):
    return parse(model, await read_json(request), request.app.state.settings.strict_params)


def _dump(obj) -> dict | None:
    return None if obj is None else obj.model_dump()


def _polled(doc: dict) -> object:
    """A file or batch; while it is in progress, the SDK's pollers read the hint to re-ask."""
    resp = json_response(dumps(doc))
    if doc.get("status") == "in_progress":
        resp.headers["openai-poll-after-ms"] = str(POLL_AFTER_MS)
    return resp


# -- stores ---------------------------------------------------------------------------

@router.post(_BASE, openapi_extra=request_body(CreateVectorStoreRequest))
async def create_vector_store(request: Request):
    req = await _body(request, CreateVectorStoreRequest)
    doc = await _svc(request).create(
        name=req.name, description=req.description, metadata=req.metadata,
        expires_after=_dump(req.expires_after), file_ids=req.file_ids or [],
        chunking_strategy=_dump(req.chunking_strategy),
        project_id=request.app.state.usage.identity(request)[1])
    return json_response(dumps(doc))


@router.get(_BASE)
async def list_vector_stores(request: Request):
    c = cursor(request)
    page = await _svc(request).page(c.after, c.before, c.limit, c.order)
    return json_response(dumps(list_object(page)))


@router.get(_BASE + "/{vector_store_id}", openapi_extra=_doc("vector_store_id"))
async def retrieve_vector_store(request: Request):
    return json_response(dumps(await _svc(request).get(request.path_params["vector_store_id"])))


@router.post(_BASE + "/{vector_store_id}", openapi_extra=_doc("vector_store_id", body=UpdateVectorStoreRequest))
async def modify_vector_store(request: Request):
    req = await _body(request, UpdateVectorStoreRequest)
    changes = {name: _dump(v) if name == "expires_after" else v
               for name in req.model_fields_set & {"name", "metadata", "expires_after"}
               for v in [getattr(req, name)]}
    doc = await _svc(request).modify(request.path_params["vector_store_id"], changes)
    return json_response(dumps(doc))


@router.delete(_BASE + "/{vector_store_id}", openapi_extra=_doc("vector_store_id"))
async def delete_vector_store(request: Request):
    vs_id = request.path_params["vector_store_id"]
    await _svc(request).delete(vs_id)
    return json_response(dumps({"id": vs_id, "object": "vector_store.deleted", "deleted": True}))


# -- files ----------------------------------------------------------------------------

def _status_filter(request: Request) -> str | None:
    value = request.query_params.get("filter")
    if value is not None and value not in STATUSES:
        raise APIError(400, f"Invalid 'filter': expected one of {', '.join(STATUSES)}, but got "
                       f"{value!r} instead.", param="filter", code="invalid_value")
    return value


@router.post(_BASE + "/{vector_store_id}/files",
             openapi_extra=_doc("vector_store_id", body=CreateVectorStoreFileRequest))
async def create_vector_store_file(request: Request):
    req = await _body(request, CreateVectorStoreFileRequest)
    doc = await _svc(request).add_file(request.path_params["vector_store_id"], req.file_id, req.attributes,
                                       _dump(req.chunking_strategy))
    return _polled(doc)


@router.get(_BASE + "/{vector_store_id}/files", openapi_extra=_doc("vector_store_id"))
async def list_vector_store_files(request: Request):
    c = cursor(request)
    page = await _svc(request).file_page(request.path_params["vector_store_id"], c.after, c.before,
                                         c.limit, c.order, _status_filter(request))
    return json_response(dumps(list_object(page)))


@router.get(_BASE + "/{vector_store_id}/files/{file_id}", openapi_extra=_doc("vector_store_id", "file_id"))
async def retrieve_vector_store_file(request: Request):
    p = request.path_params
    return _polled(await _svc(request).get_file(p["vector_store_id"], p["file_id"]))


@router.post(_BASE + "/{vector_store_id}/files/{file_id}",
             openapi_extra=_doc("vector_store_id", "file_id", body=UpdateVectorStoreFileAttributesRequest))
async def update_vector_store_file(request: Request):
    req = await _body(request, UpdateVectorStoreFileAttributesRequest)
    p = request.path_params
    doc = await _svc(request).update_file(p["vector_store_id"], p["file_id"], req.attributes)
    return json_response(dumps(doc))


@router.delete(_BASE + "/{vector_store_id}/files/{file_id}", openapi_extra=_doc("vector_store_id", "file_id"))
async def delete_vector_store_file(request: Request):
    p = request.path_params
    await _svc(request).delete_file(p["vector_store_id"], p["file_id"])
    return json_response(dumps({"id": p["file_id"], "object": "vector_store.file.deleted", "deleted": True}))


@router.get(_BASE + "/{vector_store_id}/files/{file_id}/content",
            openapi_extra=_doc("vector_store_id", "file_id"))
async def retrieve_vector_store_file_content(request: Request):
    p = request.path_params
    text = await _svc(request).file_content(p["vector_store_id"], p["file_id"])
    data = [{"type": "text", "text": text}] if text else []
    return json_response(dumps({"object": "vector_store.file_content.page", "data": data,
                                "has_more": False, "next_page": None}))


# -- file batches ---------------------------------------------------------------------

@router.post(_BASE + "/{vector_store_id}/file_batches",
             openapi_extra=_doc("vector_store_id", body=CreateVectorStoreFileBatchRequest))
async def create_vector_store_file_batch(request: Request):
    req = await _body(request, CreateVectorStoreFileBatchRequest)
    if (req.file_ids is None) == (req.files is None):
        raise APIError(400, "Exactly one of 'file_ids' or 'files' must be given.", param="file_ids",
                       code="invalid_value")
    if req.files is not None:
        entries = [(f.file_id, f.attributes, _dump(f.chunking_strategy)) for f in req.files]
    else:
        entries = [(fid, req.attributes, _dump(req.chunking_strategy)) for fid in req.file_ids]
    doc = await _svc(request).create_batch(request.path_params["vector_store_id"], entries)
    return _polled(doc)


@router.get(_BASE + "/{vector_store_id}/file_batches/{batch_id}", openapi_extra=_doc("vector_store_id", "batch_id"))
async def retrieve_vector_store_file_batch(request: Request):
    p = request.path_params
    return _polled(await _svc(request).get_batch(p["vector_store_id"], p["batch_id"]))


@router.post(_BASE + "/{vector_store_id}/file_batches/{batch_id}/cancel",
             openapi_extra=_doc("vector_store_id", "batch_id"))
async def cancel_vector_store_file_batch(request: Request):
    p = request.path_params
    return json_response(dumps(await _svc(request).cancel_batch(p["vector_store_id"], p["batch_id"])))


@router.get(_BASE + "/{vector_store_id}/file_batches/{batch_id}/files",
            openapi_extra=_doc("vector_store_id", "batch_id"))
async def list_vector_store_file_batch_files(request: Request):
    p, c, svc = request.path_params, cursor(request), _svc(request)
    await svc.get_batch(p["vector_store_id"], p["batch_id"])
    page = await svc.file_page(p["vector_store_id"], c.after, c.before, c.limit, c.order,
                               _status_filter(request), batch_id=p["batch_id"])
    return json_response(dumps(list_object(page)))


# -- search ---------------------------------------------------------------------------

@router.post(_BASE + "/{vector_store_id}/search",
             openapi_extra=_doc("vector_store_id", body=VectorStoreSearchRequest))
async def search_vector_store(request: Request):
    req = await _body(request, VectorStoreSearchRequest)
    queries, items = await _svc(request).search(
        request.path_params["vector_store_id"], req.query, max_num_results=req.max_num_results,
        filters=req.filters, ranking_options=_dump(req.ranking_options), rewrite_query=req.rewrite_query)
    return json_response(dumps({"object": "vector_store.search_results.page", "search_query": queries,
                                "data": items, "has_more": False, "next_page": None}))
