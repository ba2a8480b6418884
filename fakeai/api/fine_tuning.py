"""``/v1/fine_tuning/jobs``: create, list, retrieve, cancel, pause, resume, events (also
followed as server-sent events with ``?stream=true``) and checkpoints. Wire format only;
the work is ``fakeai.services.fine_tuning``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request

from ..schemas.fine_tuning import CreateFineTuningJobRequest
from ..services.fine_tuning import FINISHED, FineTuning
from .body import parse, read_json, request_body
from .common import DONE, SSE, dumps, json_response, sse_response
from .listing import cursor, list_object

router = APIRouter(tags=["fine-tuning"])

_BASE = "/v1/fine_tuning/jobs"
_JOB = {"parameters": [{"name": "fine_tuning_job_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}]}
_EVENTS = {"parameters": [*_JOB["parameters"],
                          {"name": "stream", "in": "query", "required": False, "schema": {"type": "boolean"},
                           "description": "Follow the job: every event as a server-sent event, oldest "
                                          "first, until the job finishes; then `data: [DONE]`."}]}
FOLLOW_POLL_S = 0.1


def _svc(request: Request) -> FineTuning:
    return request.app.state.fine_tuning


def _id(request: Request) -> str:
    return request.path_params["fine_tuning_job_id"]


@router.post(_BASE, openapi_extra=request_body(CreateFineTuningJobRequest))
async def create_fine_tuning_job(request: Request):
    state = request.app.state
    req = parse(CreateFineTuningJobRequest, await read_json(request), state.settings.strict_params)
    doc = await _svc(request).create(req.model_dump(exclude_unset=True))
    return json_response(dumps(doc))


def _metadata_filter(request: Request) -> tuple[dict, bool]:
    """``metadata[k]=v`` pairs, and whether ``metadata=null`` asks for jobs without metadata."""
    q = request.query_params
    pairs = {k[9:-1]: v for k, v in q.items() if k.startswith("metadata[") and k.endswith("]")}
    return pairs, q.get("metadata") == "null"


@router.get(_BASE)
async def list_fine_tuning_jobs(request: Request):
    c = cursor(request)
    pairs, null = _metadata_filter(request)
    page = await _svc(request).page(c.after, c.limit, pairs, null)
    return json_response(dumps(list_object(page)))


@router.get(_BASE + "/{fine_tuning_job_id}", openapi_extra=_JOB)
async def retrieve_fine_tuning_job(request: Request):
    return json_response(dumps(await _svc(request).get(_id(request))))


@router.post(_BASE + "/{fine_tuning_job_id}/cancel", openapi_extra=_JOB)
async def cancel_fine_tuning_job(request: Request):
    return json_response(dumps(await _svc(request).cancel(_id(request))))


@router.post(_BASE + "/{fine_tuning_job_id}/pause", openapi_extra=_JOB)
async def pause_fine_tuning_job(request: Request):
    return json_response(dumps(await _svc(request).pause(_id(request))))


@router.post(_BASE + "/{fine_tuning_job_id}/resume", openapi_extra=_JOB)
async def resume_fine_tuning_job(request: Request):
    return json_response(dumps(await _svc(request).resume(_id(request))))


@router.get(_BASE + "/{fine_tuning_job_id}/events", openapi_extra=_EVENTS, **SSE)
async def list_fine_tuning_events(request: Request):
    svc, job_id = _svc(request), _id(request)
    if request.query_params.get("stream") in ("true", "1"):
        await svc.get(job_id)  # 404 before the stream starts
        return sse_response(_follow(svc, job_id))
    c = cursor(request)
    page = await svc.events(job_id, c.after, c.limit)
    return json_response(dumps(list_object(page)))


async def _follow(svc: FineTuning, job_id: str) -> AsyncIterator[bytes]:
    last, finished = None, False
    while True:
        page = await svc.events(job_id, last, 100, order="asc")
        for event in page.items:
            yield b"data: " + dumps(event) + b"\n\n"
            last = event["id"]
        if page.has_more:
            continue
        if finished:
            yield DONE
            return
        finished = (await svc.get(job_id))["status"] in FINISHED
        # once finished: one more look after a beat, for the run's closing events
        await asyncio.sleep(FOLLOW_POLL_S)


@router.get(_BASE + "/{fine_tuning_job_id}/checkpoints", openapi_extra=_JOB)
async def list_fine_tuning_checkpoints(request: Request):
    c = cursor(request, default_limit=10)
    page = await _svc(request).checkpoints(_id(request), c.after, c.limit)
    return json_response(dumps(list_object(page)))
