"""Pieces shared by the generating routes: ids, fingerprints, usage, SSE framing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ..engine.cluster.router import Hints
from ..engine.core import Engine, Generation
from .errors import APIError
from .fastpath import SSEResponse, cancel_on_disconnect, client_left

DONE = b"data: [DONE]\n\n"
dumps = orjson.dumps


# Fields that only truncate, frame or label the output: a seeded request gives the
# same underlying text whatever they are (a real model's sampling works the same way).
_NOT_SEEDED = frozenset({
    "stream", "stream_options", "user", "metadata", "store", "service_tier", "stop", "n", "best_of",
    "max_tokens", "max_completion_tokens", "ignore_eos", "min_tokens", "logprobs", "top_logprobs",
    "echo", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "modalities", "audio",
    "kv_transfer_params",
})


def seed_material(raw: dict, seed: int | None) -> bytes:
    """Canonical bytes of what determines a seeded request's text."""
    if seed is None:
        return b""
    return dumps({k: v for k, v in raw.items() if k not in _NOT_SEEDED}, option=orjson.OPT_SORT_KEYS)


def new_id(prefix: str) -> str:
    return prefix + os.urandom(15).hex()


def fingerprint(model_id: str) -> str:
    return "fp_" + hashlib.blake2b(model_id.encode(), digest_size=5).hexdigest()


def now() -> int:
    return int(time.time())


def usage(gen: Generation, completion_tokens: int | None = None) -> dict:
    audio = sum(c.audio_tokens for c in gen.choices)
    ct = (gen.completion_tokens if completion_tokens is None else completion_tokens) + audio
    pt, cached, reasoning = gen.prompt_tokens, gen.cached_tokens, gen.reasoning_tokens
    if gen.usage_override:  # a scenario's reported usage
        o = gen.usage_override
        pt, ct = o.get("prompt_tokens", pt), o.get("completion_tokens", ct)
        cached, reasoning = o.get("cached_tokens", cached), o.get("reasoning_tokens", reasoning)
    return {
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "total_tokens": pt + ct,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": audio,
            "accepted_prediction_tokens": sum(c.accepted_prediction for c in gen.choices),
            "rejected_prediction_tokens": sum(c.rejected_prediction for c in gen.choices),
        },
    }


def require_model(engine: Engine, model_id: str, capability: str, does: str):
    """The model named ``model_id`` (404 if unknown), or a 400 ``model_not_supported``
    saying it ``does`` not, when it lacks ``capability``."""
    model = engine.model(model_id)
    if not getattr(model.capabilities, capability):
        raise APIError(400, f"The model `{model_id}` does not support {does}.", param="model",
                       code="model_not_supported")
    return model


def arrival(request) -> float | None:
    """When the request reached the app, on the engine's clock (set by RequestMeta)."""
    return request.scope.get("state", {}).get("arrival")


_ROUTE_HEADERS = frozenset({b"x-fakeai-router", b"x-session-id", b"x-dynamo-session-id",
                            b"x-fakeai-overlap-weight", b"x-fakeai-router-temperature"})


def route_hints(request) -> Hints | None:
    """The request's routing headers (docs/cluster.md), or None when it has none."""
    found: dict[bytes, str] | None = None
    for k, v in request.scope["headers"]:
        if k in _ROUTE_HEADERS:
            found = found or {}
            found[k] = v.decode("latin-1")
    if found is None:
        return None
    return Hints.parse(found.get(b"x-fakeai-router"),
                       found.get(b"x-session-id") or found.get(b"x-dynamo-session-id"),
                       found.get(b"x-fakeai-overlap-weight"), found.get(b"x-fakeai-router-temperature"))


_SSE_EVENT = {"type": "object", "required": ["data"],
              "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}}}


def produces(*media_types: str, json: bool = True) -> dict:
    """Route keyword arguments that document (in /openapi.json) what a success is sent as:
    JSON unless ``json=False``, and each of ``media_types`` (``text/event-stream``: one
    ``data:`` event at a time)."""
    content = {m: {"itemSchema": _SSE_EVENT} if m == "text/event-stream" else {"schema": {"type": "string"}}
               for m in media_types}
    kw: dict = {"responses": {200: {"content": content}}}
    if not json:
        kw["response_class"] = Response
    return kw


SSE = produces("text/event-stream")  # JSON, or a stream when the request asks for one


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


WATCH_AFTER_S = 0.05  # a request answered sooner than this never pays for a disconnect watcher


async def held(request, awaitable):
    """Await a non-streaming answer, cancelling it if the client leaves meanwhile (the engine
    then records the request as aborted and frees its slot, as vLLM's ``with_cancellation``
    does); raises ``ClientDisconnect`` in that case. A watcher task on the connection starts
    only once the answer has taken ``WATCH_AFTER_S``: a quick answer costs one timer."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    watcher = None

    def watch() -> None:
        nonlocal watcher
        watcher = loop.create_task(cancel_on_disconnect(request.receive, task))

    handle = loop.call_later(WATCH_AFTER_S, watch)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if not client_left(watcher):
            raise  # cancelled by the server, not by a disconnect
        task.uncancel()
        raise ClientDisconnect() from None
    finally:
        handle.cancel()
        if watcher is not None:
            watcher.cancel()


def sse_response(events: AsyncIterator[bytes]) -> SSEResponse:
    return SSEResponse(events)


async def paced(engine: Engine, gen: Generation, render: Callable[[int, int], bytes],
                closing: Callable[[], bytes], done: bytes = DONE,
                on_close: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
    """Drive ``gen`` on the engine's schedule: each due step range becomes one write,
    then ``closing()`` (the usage chunk, if any) and ``done`` (OpenAI's ``[DONE]``).
    ``on_close(steps)`` runs when the stream ends, finished or cut short, with the
    decode steps written by then (for usage accounting)."""
    sent = 0
    try:
        if gen.steps == 0:  # nothing to decode: the finish chunks go out after the TTFT
            async for _ in engine.run(gen):
                pass
            yield render(0, 1)
        else:
            async for start, end in engine.run(gen):
                yield render(start, end)
                sent = end
        yield closing() + done
    finally:
        if on_close is not None:
            on_close(sent)
