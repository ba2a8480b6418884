"""``GET /v1/organization/usage/{kind}`` and ``GET /v1/organization/costs``: query
parameters as OpenAI's, the report from ``fakeai.services.usage_report``."""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Request

from ..services.costs import Pricer
from ..services.usage_report import (
    COSTS_FILTERS,
    COSTS_GROUP_BY,
    KINDS,
    WIDTHS,
    Query,
    costs_page,
    decode_page,
    usage_page,
)
from .common import dumps, json_response
from .errors import APIError

router = APIRouter(tags=["usage"])

# bucket width -> (default, max) number of buckets per page
LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}
COSTS_LIMITS = (7, 180)
ENUMS = {"sources": ("image.generation", "image.edit", "image.variation"),
         "context_levels": ("low", "medium", "high")}
_SIZE = re.compile(r"^\d{2,5}x\d{2,5}$")
_LAST_TIME = 10**11  # the year 5138: a later time is milliseconds sent as seconds (the store ends at 2**63)


def _int(request: Request, name: str, required: bool = False) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if required:
            raise APIError(400, f"Missing required parameter: '{name}'.", param=name,
                           code="missing_required_parameter")
        return None
    try:
        value = int(raw)
    except ValueError:
        raise APIError(400, f"Invalid '{name}': expected an integer, but got {raw!r} instead.", param=name,
                       code="invalid_type") from None
    if value < 0:
        raise APIError(400, f"Invalid '{name}': expected a non-negative integer, but got {value} instead.",
                       param=name, code="invalid_value")
    return value


def _list(request: Request, name: str) -> list[str]:
    """An array query parameter: repeated (``a=x&a=y``), bracketed (``a[]=x``) or comma-separated."""
    q = request.query_params
    out: list[str] = []
    for raw in (*q.getlist(name), *q.getlist(name + "[]")):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def _one_of(name: str, values: list[str], allowed: tuple[str, ...]) -> None:
    for v in values:
        if v not in allowed:
            raise APIError(400, f"Invalid value for '{name}': '{v}'. Supported values are: "
                           + ", ".join(f"'{a}'" for a in allowed) + ".", param=name, code="invalid_value")


def _query(request: Request, widths: tuple[str, ...], limits: tuple[int, int] | None,
           group_by: tuple[str, ...], filters: tuple[str, ...], batch: bool) -> Query:
    start = _int(request, "start_time", required=True)
    end = _int(request, "end_time")
    for name, value in (("start_time", start), ("end_time", end)):
        if value is not None and value > _LAST_TIME:
            raise APIError(400, f"Invalid '{name}': expected a Unix time in seconds, at most {_LAST_TIME}, but "
                           f"got {value} instead.", param=name, code="invalid_value")
    if end is None:
        end = max(int(time.time()) + 1, start + 1)
    if end <= start:
        raise APIError(400, "Invalid 'end_time': it must be after 'start_time'.", param="end_time",
                       code="invalid_value")
    width = request.query_params.get("bucket_width") or "1d"
    if width not in widths:
        _one_of("bucket_width", [width], widths)
    default, most = limits or LIMITS[width]
    limit = _int(request, "limit")
    if limit is None:
        limit = default
    elif not 1 <= limit <= most:
        raise APIError(400, f"Invalid 'limit': integer must be between 1 and {most} for bucket_width "
                       f"'{width}', got {limit}.", param="limit", code="invalid_value")
    groups = _list(request, "group_by")
    _one_of("group_by", groups, group_by)
    chosen: dict[str, frozenset[str]] = {}
    for name in filters:
        values = _list(request, name)
        if not values:
            continue
        if name in ENUMS:
            _one_of(name, values, ENUMS[name])
        elif name == "sizes" and not all(_SIZE.match(v) for v in values):
            raise APIError(400, "Invalid 'sizes': expected sizes such as '1024x1024'.", param="sizes",
                           code="invalid_value")
        chosen[name] = frozenset(values)
    in_batch = None
    raw = request.query_params.get("batch")
    if batch and raw is not None:
        if raw.lower() not in ("true", "false"):
            raise APIError(400, f"Invalid 'batch': expected a boolean, but got {raw!r} instead.", param="batch",
                           code="invalid_type")
        in_batch = raw.lower() == "true"
    w = WIDTHS[width]
    first = start // w * w
    token = request.query_params.get("page")
    if token:
        at = decode_page(token)
        if at is None or at % w or not first <= at < end:
            raise APIError(400, f"Invalid 'page': {token!r} is not a page of this query.", param="page",
                           code="invalid_value")
        first = at
    return Query(first, end, width, limit, tuple(dict.fromkeys(groups)), chosen, in_batch)


def _params(group_by: tuple[str, ...], filters: tuple[str, ...], widths: tuple[str, ...], batch: bool) -> dict:
    """The OpenAPI parameters of a usage route (they are parsed by hand)."""
    def p(name: str, schema: dict, required: bool = False) -> dict:
        return {"name": name, "in": "query", "required": required, "schema": schema}

    array = {"type": "array", "items": {"type": "string"}}
    out = [p("start_time", {"type": "integer"}, True), p("end_time", {"type": "integer"}),
           p("bucket_width", {"type": "string", "enum": list(widths), "default": "1d"}),
           *[p(f, array) for f in filters],
           p("group_by", {"type": "array", "items": {"type": "string", "enum": list(group_by)}}),
           p("limit", {"type": "integer"}), p("page", {"type": "string"})]
    if batch:
        out.append(p("batch", {"type": "boolean"}))
    return {"parameters": out}


def _usage_route(kind: str):
    spec = KINDS[kind]

    async def usage(request: Request):
        q = _query(request, tuple(LIMITS), None, spec.group_by, spec.filters, spec.batch_filter)
        return json_response(dumps(await usage_page(request.app.state.usage, kind, q)))

    usage.__name__ = f"usage_{kind}"
    router.add_api_route(f"/v1/organization/usage/{kind}", usage, methods=["GET"],
                         summary=f"Get {kind.replace('_', ' ')} usage details for the organization.",
                         openapi_extra=_params(spec.group_by, spec.filters, tuple(LIMITS), spec.batch_filter))


for _kind in KINDS:
    _usage_route(_kind)


@router.get("/v1/organization/costs", openapi_extra=_params(COSTS_GROUP_BY, COSTS_FILTERS, ("1d",), False))
async def costs(request: Request):
    q = _query(request, ("1d",), COSTS_LIMITS, COSTS_GROUP_BY, COSTS_FILTERS, False)
    state = request.app.state
    return json_response(dumps(await costs_page(state.usage, Pricer(state.engine.registry), q)))
