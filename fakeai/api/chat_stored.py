"""Stored chat completions: ``store=true`` keeps a completion with its request messages and
metadata; ``GET /v1/chat/completions`` lists them (filters ``model`` and
``metadata[key]=value``), and each can be retrieved, updated (metadata), deleted and its
messages listed. Only requests with ``store=true`` pay for any of this."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from fastapi import APIRouter, Request

from ..engine.prompt import content_text
from ..schemas.chat import ChatCompletionRequest
from ..schemas.responses import MetadataUpdate, metadata_problem
from ..services.responses import page_list
from .body import parse, read_json, request_body
from .common import dumps, json_response
from .errors import APIError
from .listing import cursor, list_object

router = APIRouter(tags=["chat"])
KIND = "chat_completion"

_ID = {"parameters": [{"name": "completion_id", "in": "path", "required": True, "schema": {"type": "string"}}]}
_UPDATE = request_body(MetadataUpdate)


def check_store(req: ChatCompletionRequest) -> None:
    problem = metadata_problem(req.metadata)
    if problem:
        raise APIError(400, problem, param="metadata", code="invalid_value")


async def save(state, completion: bytes, req: ChatCompletionRequest) -> None:
    """Keep a finished completion (durably: returns once written)."""
    body = orjson.loads(completion)
    body["metadata"] = req.metadata or {}
    await state.store.put(KIND, {"id": body["id"], "model": req.model, "body": body, "messages": req.messages})


async def then(events: AsyncIterator[bytes], after: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
    """A stream followed by ``after()`` once its last chunk is out."""
    async for chunk in events:
        yield chunk
    await after()


async def _doc(request: Request) -> dict:
    cid = request.path_params["completion_id"]
    doc = await request.app.state.store.get(KIND, cid)
    if doc is None:
        raise APIError(404, f"Chat completion with id '{cid}' not found.", param="completion_id")
    return doc


def _metadata_filter(request: Request) -> dict[str, str]:
    out = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("metadata[") and key.endswith("]"):
            out[key[9:-1]] = value
    return out


@router.get("/v1/chat/completions")
async def list_chat_completions(request: Request):
    cur = cursor(request, default_order="asc")
    model = request.query_params.get("model") or None
    wanted = _metadata_filter(request)

    def match(doc: dict) -> bool:
        if model is not None and doc["model"] != model:
            return False
        meta = doc["body"].get("metadata") or {}
        return all(meta.get(k) == v for k, v in wanted.items())

    page = await request.app.state.store.page(KIND, after=cur.after, before=cur.before, limit=cur.limit,
                                              order=cur.order, match=match if model or wanted else None)
    return json_response(dumps(list_object(page, [doc["body"] for doc in page.items])))


@router.get("/v1/chat/completions/{completion_id}", openapi_extra=_ID)
async def retrieve_chat_completion(request: Request):
    return json_response(dumps((await _doc(request))["body"]))


@router.post("/v1/chat/completions/{completion_id}", openapi_extra={**_ID, **_UPDATE})
async def update_chat_completion(request: Request):
    state = request.app.state
    doc = await _doc(request)
    req = parse(MetadataUpdate, await read_json(request), state.settings.strict_params)
    problem = metadata_problem(req.metadata)
    if problem:
        raise APIError(400, problem, param="metadata", code="invalid_value")

    def change(d: dict) -> dict:
        d["body"]["metadata"] = req.metadata or {}
        return d

    doc = await state.store.update(KIND, doc["id"], change)
    if doc is None:
        raise APIError(404, f"Chat completion with id '{request.path_params['completion_id']}' not found.",
                       param="completion_id")
    return json_response(dumps(doc["body"]))


@router.delete("/v1/chat/completions/{completion_id}", openapi_extra=_ID)
async def delete_chat_completion(request: Request):
    doc = await _doc(request)
    await request.app.state.store.delete(KIND, doc["id"])
    return json_response(dumps({"object": "chat.completion.deleted", "id": doc["id"], "deleted": True}))


def _message(cid: str, i: int, m: dict) -> dict:
    content = m.get("content")
    parts = [p for p in content if isinstance(p, dict) and p.get("type") in ("text", "image_url")] \
        if isinstance(content, list) else None
    out = {"id": f"{cid}-{i}", "role": m.get("role"),
           "content": content_text(content) if content is not None else None,
           "refusal": None, "name": m.get("name"), "content_parts": parts}
    for key in ("tool_calls", "tool_call_id", "function_call"):
        if m.get(key) is not None:
            out[key] = m[key]
    return out


@router.get("/v1/chat/completions/{completion_id}/messages", openapi_extra=_ID)
async def list_chat_messages(request: Request):
    doc = await _doc(request)
    cur = cursor(request, default_order="asc")
    messages = [_message(doc["id"], i, m) for i, m in enumerate(doc["messages"])]
    page = page_list(messages, cur.after, cur.before, cur.limit, cur.order)
    return json_response(dumps(list_object(page)))
