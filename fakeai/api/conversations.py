"""``/v1/conversations``: a stored list of items that responses read from and append to."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..schemas.responses import ConversationCreate, ConversationUpdate, ItemsCreate, metadata_problem
from ..store import Page
from .body import parse, read_json, request_body
from .common import dumps, json_response, new_id, now
from .errors import APIError
from .listing import cursor, list_object
from .responses_input import normalize

router = APIRouter(tags=["conversations"])

_CONV = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ITEM = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}
_CREATE = request_body(ConversationCreate)
_UPDATE = request_body(ConversationUpdate)
_ITEMS = request_body(ItemsCreate)


def _with(*params: dict, body: dict | None = None) -> dict:
    return {"parameters": list(params), **(body or {})}


def _check_metadata(metadata: dict | None) -> None:
    problem = metadata_problem(metadata)
    if problem:
        raise APIError(400, problem, param="metadata", code="invalid_value")


async def _conversation(request: Request) -> dict:
    cid = request.path_params["conversation_id"]
    conv = await request.app.state.responses.get_conversation(cid)
    if conv is None:
        raise APIError(404, f"Conversation with id '{cid}' not found.", param="conversation_id")
    return conv


@router.post("/v1/conversations", openapi_extra=_CREATE)
async def create_conversation(request: Request):
    state = request.app.state
    req = parse(ConversationCreate, await read_json(request), state.settings.strict_params)
    _check_metadata(req.metadata)
    items = normalize(req.items, "items")
    conv = {"id": new_id("conv_"), "object": "conversation", "created_at": now(), "metadata": req.metadata or {}}
    await state.responses.put_conversation(conv)
    await state.responses.add_items(conv["id"], items)
    return json_response(dumps(conv))


@router.get("/v1/conversations/{conversation_id}", openapi_extra=_with(_CONV))
async def retrieve_conversation(request: Request):
    return json_response(dumps(await _conversation(request)))


@router.post("/v1/conversations/{conversation_id}", openapi_extra=_with(_CONV, body=_UPDATE))
async def update_conversation(request: Request):
    state = request.app.state
    conv = await _conversation(request)
    req = parse(ConversationUpdate, await read_json(request), state.settings.strict_params)
    _check_metadata(req.metadata)
    updated = await state.responses.update_conversation(conv["id"], req.metadata or {})
    if updated is None:
        raise APIError(404, f"Conversation with id '{conv['id']}' not found.", param="conversation_id")
    return json_response(dumps(updated))


@router.delete("/v1/conversations/{conversation_id}", openapi_extra=_with(_CONV))
async def delete_conversation(request: Request):
    conv = await _conversation(request)
    await request.app.state.responses.delete_conversation(conv["id"])
    return json_response(dumps({"id": conv["id"], "object": "conversation.deleted", "deleted": True}))


@router.post("/v1/conversations/{conversation_id}/items", openapi_extra=_with(_CONV, body=_ITEMS))
async def create_items(request: Request):
    state = request.app.state
    conv = await _conversation(request)
    req = parse(ItemsCreate, await read_json(request), state.settings.strict_params)
    items = normalize(req.items, "items")
    await state.responses.add_items(conv["id"], items)
    return json_response(dumps(list_object(Page(items, False))))


@router.get("/v1/conversations/{conversation_id}/items", openapi_extra=_with(_CONV))
async def list_items(request: Request):
    conv = await _conversation(request)
    cur = cursor(request)
    if cur.before is not None:
        raise APIError(400, "Unrecognized query parameter: 'before'.", param="before")
    page = await request.app.state.responses.items_page(conv["id"], cur.after, cur.limit, cur.order)
    return json_response(dumps(list_object(page)))


async def _item_of(request: Request) -> tuple[dict, dict]:
    conv = await _conversation(request)
    item_id = request.path_params["item_id"]
    item = await request.app.state.responses.get_item(conv["id"], item_id)
    if item is None:
        raise APIError(404, f"Item with id '{item_id}' not found.", param="item_id")
    return conv, item


@router.get("/v1/conversations/{conversation_id}/items/{item_id}", openapi_extra=_with(_CONV, _ITEM))
async def retrieve_item(request: Request):
    _, item = await _item_of(request)
    return json_response(dumps(item))


@router.delete("/v1/conversations/{conversation_id}/items/{item_id}", openapi_extra=_with(_CONV, _ITEM))
async def delete_item(request: Request):
    conv, item = await _item_of(request)
    await request.app.state.responses.delete_item(conv["id"], item["id"])
    return json_response(dumps(conv))
