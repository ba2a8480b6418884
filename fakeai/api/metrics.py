"""Metrics routes: Prometheus text (vLLM, Dynamo, DCGM), their JSON views, and the KV cache summary.

Everything is rendered at request time by ``app.state.telemetry`` from the
live cluster; nothing here computes a value.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..telemetry.port import CONTENT_TYPE
from .common import dumps, json_response, produces

router = APIRouter(tags=["metrics"])
_TEXT = CONTENT_TYPE.decode()
_PROMETHEUS = produces("text/plain", json=False)


def _text(body: bytes) -> Response:
    return Response(body, media_type=_TEXT)


@router.get("/metrics", **_PROMETHEUS)
async def metrics(request: Request):
    """Every series in Prometheus text format: vLLM's, Dynamo's and DCGM's."""
    return _text(await request.app.state.telemetry.prometheus_text())


@router.get("/metrics/prometheus", **_PROMETHEUS)
async def metrics_prometheus(request: Request):
    """Alias of ``/metrics`` (fakeai 0.3.2's path)."""
    return _text(await request.app.state.telemetry.prometheus_text())


@router.get("/dynamo/metrics", **_PROMETHEUS)
async def dynamo_metrics(request: Request):
    return _text(await request.app.state.telemetry.dynamo_text())


@router.get("/dynamo/metrics/json")
async def dynamo_metrics_json(request: Request):
    return json_response(dumps(request.app.state.telemetry.dynamo_json()))


@router.get("/dcgm/metrics", **_PROMETHEUS)
async def dcgm_metrics(request: Request):
    return _text(await request.app.state.telemetry.dcgm_exposition())


@router.get("/dcgm/metrics/json")
async def dcgm_metrics_json(request: Request):
    return json_response(dumps(request.app.state.telemetry.dcgm_json()))


@router.get("/kv-cache/metrics")
async def kv_cache_metrics(request: Request):
    return json_response(dumps(request.app.state.telemetry.kv_cache_json()))
