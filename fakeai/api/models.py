"""``/v1/models``: the catalog on the wire."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..engine.core import Engine
from ..registry import ModelDef
from .common import dumps, json_response

router = APIRouter(tags=["models"])


def model_object(m: ModelDef) -> dict:
    return {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}


def _listing(engine: Engine) -> bytes:
    """The list body, rebuilt only when the registry changes."""
    reg = engine.registry
    cached = _cache.get(id(reg))
    if cached is None or cached[0] != reg.version:
        body = dumps({"object": "list", "data": [model_object(m) for m in reg.list()]})
        _cache.clear()
        _cache[id(reg)] = cached = (reg.version, body)
    return cached[1]


_cache: dict[int, tuple[int, bytes]] = {}


@router.get("/v1/models")
async def list_models(request: Request):
    return json_response(_listing(request.app.state.engine))


# Declared before the catch-all path route: model ids may themselves contain '/'.
# Path parameters are read from the request and documented by hand: a typed parameter
# makes FastAPI import its pydantic-v1 compatibility layer (~45 ms of start-up).
_MODEL_ID = {"parameters": [{"name": "model_id", "in": "path", "required": True,
                             "schema": {"type": "string"}, "description": "A model id; may contain '/'."}]}


@router.get("/v1/models/{model_id:path}/capabilities", openapi_extra=_MODEL_ID)
async def model_capabilities(request: Request):
    m = request.app.state.engine.model(request.path_params["model_id"])
    body = model_object(m) | {
        "capabilities": m.capabilities.as_dict(),
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "tokenizer": m.tokenizer,
        "tokenizer_exact": m.tokenizer_exact,
        "pricing": {"input": m.pricing.input, "cached_input": m.pricing.cached_input,
                    "output": m.pricing.output, "unit": "USD per 1M tokens"},
    }
    return json_response(dumps(body))


@router.get("/v1/models/{model_id:path}", openapi_extra=_MODEL_ID)
async def retrieve_model(request: Request):
    return json_response(dumps(model_object(request.app.state.engine.model(request.path_params["model_id"]))))


@router.delete("/v1/models/{model_id:path}", openapi_extra=_MODEL_ID)
async def delete_model(request: Request):
    """Delete a fine-tuned model (403 for the catalog's models, 404 for unknown ids)."""
    model_id = request.path_params["model_id"]
    await request.app.state.fine_tuning.delete_model(model_id)
    return json_response(dumps({"id": model_id, "object": "model", "deleted": True}))
