"""Pieces shared by the generating routes: ids, fingerprints, usage, SSE framing."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.responses import Response

from ..engine.core import Engine, Generation
from .errors import APIError
from .fastpath import SSEResponse

DONE = b"data: [DONE]\n\n"
dumps = orjson.dumps


# Fields that only truncate, frame or label the output: a seeded request gives the
# same underlying text whatever they are (a real model's sampling works the same way).
_NOT_SEEDED = frozenset({
    "stream", "stream_options", "user", "metadata", "store", "service_tier", "stop", "n", "best_of",
    "max_tokens", "max_completion_tokens", "ignore_eos", "min_tokens", "logprobs", "top_logprobs",
    "echo", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "modalities", "audio",
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
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": ct,
        "total_tokens": gen.prompt_tokens + ct,
        "prompt_tokens_details": {"cached_tokens": gen.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": gen.reasoning_tokens,
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


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def sse_response(events: AsyncIterator[bytes]) -> SSEResponse:
    return SSEResponse(events)


async def paced(engine: Engine, gen: Generation, render: Callable[[int, int], bytes],
                closing: Callable[[], bytes], done: bytes = DONE) -> AsyncIterator[bytes]:
    """Drive ``gen`` on the engine's schedule: each due step range becomes one write,
    then ``closing()`` (the usage chunk, if any) and ``done`` (OpenAI's ``[DONE]``)."""
    if gen.steps == 0:  # nothing to decode: the finish chunks go out after the TTFT
        async for _ in engine.run(gen):
            pass
        yield render(0, 1)
    else:
        async for start, end in engine.run(gen):
            yield render(start, end)
    yield closing() + done
