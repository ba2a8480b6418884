"""``POST /v1/moderations``: strings, string arrays and text / image content parts.

Scoring lives in ``fakeai.services.moderation``; this module parses the request,
checks it against the model, counts the prompt tokens that time it, and renders.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..engine.core import Engine
from ..engine.multimodal import family_for_model, part_cost
from ..schemas.moderations import InvalidInput, ModerationRequest, input_items
from ..services.moderation import moderate
from . import common, metering
from .body import parse, read_json, request_body
from .common import dumps
from .errors import APIError

router = APIRouter(tags=["moderations"])

_REQUEST_SCHEMA = request_body(ModerationRequest)


@router.post("/v1/moderations", openapi_extra=_REQUEST_SCHEMA)
async def create_moderation(request: Request):
    app = request.app.state
    req = parse(ModerationRequest, await read_json(request), app.settings.strict_params)
    engine: Engine = app.engine
    model = common.require_model(engine, req.model, "moderation", "the moderations endpoint")
    try:
        items = input_items(req.input)
    except InvalidInput as e:
        raise APIError(400, e.message, param=e.param, code=e.code) from None
    tok = engine.tokenizer(model)
    family = family_for_model(model.id)
    prompt_tokens = 0
    for item in items:
        prompt_tokens += sum(tok.count(t) for t in item.texts)
        for param, part in item.images:
            if not model.capabilities.vision:
                raise APIError(400, f"The model `{req.model}` does not support image inputs; use "
                               "omni-moderation-latest.", param=param, code="invalid_value")
            prompt_tokens += part_cost(part, family, param=param).tokens
    results = [moderate(model, item.texts, [part["image_url"]["url"] for _, part in item.images])
               for item in items]
    await engine.simulate(model, prompt_tokens, arrival=common.arrival(request), endpoint="moderations",
                          hints=common.route_hints(request))
    metering.record(request, "moderations", req.model, input_tokens=prompt_tokens)
    return common.json_response(dumps({"id": common.new_id("modr-"), "model": req.model, "results": results}))
