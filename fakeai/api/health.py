"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .common import dumps, json_response

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request):
    state = request.app.state
    cap = state.engine.cluster
    return json_response(dumps({"status": "healthy", "ready": True, "version": state.version,
                                "running": cap.running, "waiting": cap.waiting}))


@router.get("/health/ready")
async def ready(request: Request):
    """503 until the default tokenizer (o200k_base) is loaded."""
    warm = getattr(request.app.state, "warm", None)
    if warm is None or not warm.done():
        return json_response(dumps({"status": "starting", "ready": False}), status=503)
    return json_response(dumps({"status": "ready", "ready": True}))
