"""The JSON metrics routes, the metrics history, ``/health/detailed`` and the ``/metrics/stream``
WebSocket (docs/metrics-api.md). Everything is rendered by ``app.state.metrics``
(``fakeai.telemetry.overview.Overview``); this module parses queries and writes responses.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from starlette.responses import Response

from ..services.costs import Pricer
from ..services.metrics_costs import costs_since
from ..telemetry.overview import UnknownFamily, parse_families
from ..telemetry.views import METRICS, best, ranking, summary, to_csv
from .common import dumps, json_response
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


@router.get("/metrics/json")
async def metrics_json(request: Request, families: str | None = None, models: str | None = None):
    """Every number the server knows, as one JSON document."""
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


@router.get("/metrics/by-model/{model:path}")
async def metrics_of_model(request: Request, model: str):
    ov = _overview(request)
    return json_response(dumps({"model": model, **_model_scope(ov, request, model, ov.models())}))


@router.get("/metrics/compare")
async def metrics_compare(request: Request, models: str | None = None):
    ov = _overview(request)
    names = _names(models)
    if not names:
        raise APIError(400, "Give the models to compare: ?models=a,b.", param="models", code="missing_required_parameter")
    merged = ov.models()
    data = {m: summary(_model_scope(ov, request, m, merged)) for m in names}
    return json_response(dumps({"object": "metrics.compare", "models": list(names), "data": data,
                                "best": best(data)}))


@router.get("/metrics/ranking")
async def metrics_ranking(request: Request, metric: str | None = None, order: str | None = None,
                          limit: int | None = None):
    ov = _overview(request)
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


@router.get("/metrics/costs")
async def metrics_costs(request: Request, since: float | None = None):
    state = request.app.state
    ov = _overview(request, stats=False)
    start = ov.started if since is None else since
    return json_response(dumps(await costs_since(state.usage, Pricer(state.engine.registry), start)))


@router.get("/metrics/csv")
async def metrics_csv(request: Request, by: str = "model"):
    ov = _overview(request)
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


def _history(request: Request, since: float | None, limit: int | None) -> list[bytes]:
    h = _overview(request).history
    if limit is not None and limit < 0:
        raise APIError(400, "limit must not be negative.", param="limit", code="invalid_value")
    return h.entries(since, limit)


@router.get("/metrics/history")
async def metrics_history(request: Request, since: float | None = None, limit: int | None = None):
    h = request.app.state.metrics.history
    entries = _history(request, since, limit)
    head = dumps({"object": "list", "interval_s": h.interval, "length": h.length})[:-1]
    return json_response(head + b',"data":[' + b",".join(entries) + b"]}")


@router.get("/metrics/history.jsonl")
async def metrics_history_jsonl(request: Request, since: float | None = None, limit: int | None = None):
    entries = _history(request, since, limit)
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
