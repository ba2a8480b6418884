"""The JSON metrics routes, the metrics history, ``/health/detailed`` and the ``/metrics/stream``
WebSocket (docs/metrics-api.md). Everything is rendered by ``app.state.metrics``
(``fakeai.telemetry.overview.Overview``); this module parses queries and writes responses.
"""

from __future__ import annotations

import asyncio
import math
import time

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from ..services.costs import Pricer
from ..services.metrics_costs import costs_since
from ..telemetry import process
from ..telemetry.overview import UnknownFamily, parse_families
from ..telemetry.views import METRICS, best, ranking, summary, to_csv
from .body import path_doc, query_doc
from .common import dumps, json_response, produces
from .errors import APIError

router = APIRouter(tags=["metrics"])
_DISABLED = "Per-request metrics are off: the server runs with --metrics-minimal."


def _overview(request: Request, stats: bool = True):
    ov = request.app.state.metrics
    if stats and ov.stats is None:
        raise APIError(404, _DISABLED, code="metrics_disabled")
    return ov


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    return names or None


def _number(request: Request, name: str, kind: type[int] | type[float]):
    """A numeric query parameter, or None (parsed by hand: see ``path_doc``)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = kind(raw)
        if kind is float and not math.isfinite(value):  # float() takes "nan" and "inf"
            raise ValueError
        return value
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise APIError(400, f"{name} must be {what}, not {raw!r}.", param=name, code="invalid_value") from None


_STR = {"type": "string"}
_SINCE, _LIMIT = {"type": "number"}, {"type": "integer"}
_LAST_SINCE = 1e11  # the year 5138: a later `since` is milliseconds sent as seconds


@router.get("/metrics/json", openapi_extra=query_doc(families=_STR, models=_STR))
async def metrics_json(request: Request):
    """Every number the server knows, as one JSON document."""
    families, models = request.query_params.get("families"), request.query_params.get("models")
    try:
        fams = parse_families(families)
    except UnknownFamily as e:
        raise APIError(400, str(e), param="families", code="invalid_value") from None
    return json_response(dumps(_overview(request, stats=False).document(fams, _names(models))))


def _model_scope(ov, request: Request, model: str, merged: dict) -> dict:
    a = merged.get(model)
    if a is None:
        registry = request.app.state.engine.registry
        if registry.get(model) is None and registry.resolve(model) is None:
            raise APIError(404, f"The model `{model}` does not exist or has no metrics.", param="model",
                           code="model_not_found")
    return ov.model_doc(model, a)


@router.get("/metrics/by-model")
async def metrics_by_model(request: Request):
    ov = _overview(request)
    data = [{"model": m, **ov.model_doc(m, a)} for m, a in sorted(ov.models().items())]
    return json_response(dumps({"object": "list", "data": data}))


@router.get("/metrics/by-model/{model:path}", openapi_extra=path_doc("model"))
async def metrics_of_model(request: Request):
    model = request.path_params["model"]
    ov = _overview(request)
    return json_response(dumps({"model": model, **_model_scope(ov, request, model, ov.models())}))


@router.get("/metrics/compare", openapi_extra=query_doc(models=_STR))
async def metrics_compare(request: Request):
    ov = _overview(request)
    names = _names(request.query_params.get("models"))
    if not names:
        raise APIError(400, "Give the models to compare: ?models=a,b.", param="models", code="missing_required_parameter")
    merged = ov.models()
    data = {m: summary(_model_scope(ov, request, m, merged)) for m in names}
    return json_response(dumps({"object": "metrics.compare", "models": list(names), "data": data,
                                "best": best(data)}))


@router.get("/metrics/ranking", openapi_extra=query_doc(metric=_STR, order=_STR, limit=_LIMIT))
async def metrics_ranking(request: Request):
    ov = _overview(request)
    metric, order = request.query_params.get("metric"), request.query_params.get("order")
    limit = _number(request, "limit", int)
    if metric not in METRICS:
        raise APIError(400, f"Unknown ranking metric {metric!r}. Metrics: {', '.join(METRICS)}.", param="metric",
                       code="invalid_value")
    if order not in (None, "asc", "desc"):
        raise APIError(400, "order must be 'asc' or 'desc'.", param="order", code="invalid_value")
    if limit is not None and limit < 1:
        raise APIError(400, "limit must be at least 1.", param="limit", code="invalid_value")
    summaries = {m: summary(ov.model_doc(m, a)) for m, a in ov.models().items()}
    order, rows = ranking(summaries, metric, order, limit)
    return json_response(dumps({"object": "list", "metric": metric, "order": order, "data": rows}))


@router.get("/metrics/costs", openapi_extra=query_doc(since=_SINCE))
async def metrics_costs(request: Request):
    state = request.app.state
    since = _number(request, "since", float)
    ov = _overview(request, stats=False)
    if since is not None and not 0 <= since <= _LAST_SINCE:  # (the store's integers end at 2**63)
        raise APIError(400, f"since must be a Unix time in seconds, from 0 to {_LAST_SINCE:.0f}.", param="since",
                       code="invalid_value")
    start = ov.started if since is None else since
    return json_response(dumps(await costs_since(state.usage, Pricer(state.engine.registry), start)))


@router.get("/metrics/csv", openapi_extra=query_doc(by={"type": "string", "default": "model"}),
            **produces("text/csv", json=False))
async def metrics_csv(request: Request):
    ov = _overview(request)
    by = request.query_params.get("by", "model")
    st = ov.stats
    if by == "model":
        rows = {m: summary(ov.model_doc(m, a)) for m, a in sorted(ov.models().items())}
    elif by in ("endpoint", "key"):
        merged = st.merged(by == "endpoint", False, by == "key")
        table = merged.endpoints if by == "endpoint" else merged.keys
        rows = {n: summary(st.scope_doc(a, None, 0, False)) for n, a in sorted(table.items())}
    else:
        raise APIError(400, "by must be 'model', 'endpoint' or 'key'.", param="by", code="invalid_value")
    return Response(to_csv(by, rows), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="fakeai-metrics-by-{by}.csv"'})


def _history(request: Request) -> list[bytes]:
    h = _overview(request).history
    since, limit = _number(request, "since", float), _number(request, "limit", int)
    if limit is not None and limit < 0:
        raise APIError(400, "limit must not be negative.", param="limit", code="invalid_value")
    return h.entries(since, limit)


@router.get("/metrics/history", openapi_extra=query_doc(since=_SINCE, limit=_LIMIT))
async def metrics_history(request: Request):
    h = request.app.state.metrics.history
    entries = _history(request)
    head = dumps({"object": "list", "interval_s": h.interval, "length": h.length})[:-1]
    return json_response(head + b',"data":[' + b",".join(entries) + b"]}")


@router.get("/metrics/history.jsonl", openapi_extra=query_doc(since=_SINCE, limit=_LIMIT),
            **produces("application/x-ndjson", json=False))
async def metrics_history_jsonl(request: Request):
    entries = _history(request)
    return Response(b"".join(e + b"\n" for e in entries), media_type="application/x-ndjson",
                    headers={"content-disposition": 'attachment; filename="fakeai-metrics-history.jsonl"'})


@router.get("/health/detailed")
async def health_detailed(request: Request):
    state = request.app.state
    ov = state.metrics
    store = state.store
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(store.get("fakeai_health", "probe"), 2.0)
        reachable, latency = True, round((time.perf_counter() - t0) * 1000, 3)
    except Exception:  # noqa: BLE001 (any failure of the store is "unreachable" here)
        reachable, latency = False, None
    warm = getattr(state, "warm", None)
    ready = warm is not None and warm.done()
    c = state.engine.cluster
    workers = list(c.workers)
    h = ov.history
    return json_response(dumps({
        "status": "healthy" if reachable else "degraded", "version": state.version,
        "uptime_s": round(ov.uptime_s, 3), "started_at": ov.started, "ready": ready,
        "warm": {"o200k_base": "ready" if ready else "loading"},
        "store": {"backend": getattr(store, "name", "?"), "reachable": reachable, "latency_ms": latency},
        "cluster": {"workers": len(workers), "gpus": sum(len(w.gpus) for w in workers), "gpu_type": c.config.gpu_type,
                    "models": sorted({w.model for w in workers}), "running": c.running, "waiting": c.waiting},
        "metrics": {"minimal": ov.minimal,
                    "history": {"interval_s": h.interval, "length": h.length, "entries": len(h),
                                "file": h.path},
                    "stream_clients": len(ov.stream.clients), "stream_dropped": ov.stream.dropped},
        "process": process.snapshot(),
    }))


@router.websocket("/metrics/stream")
async def metrics_stream(websocket: WebSocket):
    """Live metrics: a snapshot, then merge-patch deltas (docs/metrics-api.md)."""
    await websocket.accept()
    q = websocket.query_params
    params = {k: q[k] for k in ("families", "models", "interval") if k in q}

    async def receive() -> str | None:
        while True:
            try:
                message = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return None
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text is not None:
                return text

    async def close(code: int, reason: str) -> None:
        await websocket.close(code, reason)

    try:
        await websocket.app.state.metrics.stream.serve(websocket.send_text, receive, close, params)
    except (WebSocketDisconnect, RuntimeError):  # gone while we wrote
        pass
