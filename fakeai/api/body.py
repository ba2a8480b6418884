"""Parsing a JSON request body once: bytes -> dict -> validated wire model."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..security.inputs import ShapeError, check_shape
from .errors import APIError, validation_error

M = TypeVar("M", bound=BaseModel)

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
    "help center at help.openai.com.)"
)


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise APIError(400, _BAD_JSON) from None
    if not isinstance(data, dict):
        raise APIError(400, _BAD_JSON if data is None else
                       "Invalid request body: expected a JSON object at the top level.")
    check_json(request, data)
    return data


def check_json(request: Request, data: Any) -> None:
    """400 for a body nested deeper than ``max_json_depth`` or with an array longer than
    ``max_json_array`` (settings)."""
    s = request.app.state.settings
    try:
        check_shape(data, s.max_json_depth, s.max_json_array)
    except ShapeError as e:
        raise APIError(400, str(e), code="invalid_request_body") from None


def parse(model: type[M], data: dict[str, Any], strict: bool) -> M:
    try:
        obj = model.model_validate(data)
    except ValidationError as e:
        raise validation_error(e) from None
    if strict and obj.model_extra:
        name = next(iter(obj.model_extra))
        raise APIError(400, f"Unrecognized request argument supplied: {name}", param=name,
                       code="unrecognized_argument")
    return obj


BODY_MODELS: list[type[BaseModel]] = []  # request models whose schemas /openapi.json lists


def request_body(model: type[BaseModel]) -> dict:
    """OpenAPI ``requestBody`` for a route that parses its body itself. The schema is
    generated only when /openapi.json is first asked for (see ``body_components``)."""
    BODY_MODELS.append(model)
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def path_doc(*names: str, body: type[BaseModel] | None = None) -> dict:
    """OpenAPI extras for a route that reads its path parameters from ``request.path_params``
    (a typed parameter would make FastAPI import its pydantic-v1 layer: ~40 ms of start-up),
    plus its request body when it parses one itself."""
    extra: dict = {"parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                                  for n in names]}
    if body is not None:
        extra.update(request_body(body))
    return extra


def query_doc(**params: dict) -> dict:
    """OpenAPI extras: optional query parameters read by hand, each ``name={json schema}``."""
    return {"parameters": [{"name": n, "in": "query", "required": False, "schema": s} for n, s in params.items()]}


def body_components() -> dict:
    components: dict = {}
    for model in BODY_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components
