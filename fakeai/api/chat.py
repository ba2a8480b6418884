"""``POST /v1/chat/completions``: wire format only; the engine decides content and timing."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request

from ..engine.core import Engine, GenParams, Generation
from ..engine.prompt import last_user_text
from ..schemas.chat import ChatCompletionRequest, check_messages
from ..schemas.common import stop_tuple
from . import common
from .body import parse, read_json, request_body_schema
from .common import dumps
from .errors import APIError

router = APIRouter(tags=["chat"])

_REQUEST_SCHEMA, COMPONENTS = request_body_schema(ChatCompletionRequest)


def _params(req: ChatCompletionRequest, raw: dict) -> GenParams:
    return GenParams(
        max_tokens=req.completion_limit,
        n=req.n,
        seed=req.seed,
        stop=stop_tuple(req.stop),
        ignore_eos=req.ignore_eos,
        min_tokens=req.min_tokens,
        seed_material=common.seed_material(raw, req.seed),
    )


@router.post("/v1/chat/completions", openapi_extra=_REQUEST_SCHEMA)
async def create_chat_completion(request: Request):
    app = request.app.state
    raw = await read_json(request)
    req = parse(ChatCompletionRequest, raw, app.settings.strict_params)
    problem = check_messages(req.messages)
    if problem:
        raise APIError(400, problem[1], param=problem[0])
    if req.stream_options is not None and not req.stream:
        raise APIError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options")
    engine: Engine = app.engine
    model = engine.model(req.model)
    if not model.capabilities.chat:
        raise APIError(400, f"The model `{req.model}` does not support chat completions.",
                       param="model", code="model_not_supported")
    prompt_tokens = engine.count_chat_prompt(model, req.messages)
    gen = engine.generate(model, prompt_tokens, _params(req, raw), last_user_text(req.messages),
                          arrival=common.arrival(request))
    meta = {"id": common.new_id("chatcmpl-"), "model": req.model, "created": common.now(),
            "fp": common.fingerprint(model.id)}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return common.sse_response(_stream(engine, gen, meta, include_usage))
    await engine.complete(gen)
    return common.json_response(render_completion(gen, meta))


def render_completion(gen: Generation, meta: dict) -> bytes:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": c.text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": c.finish_reason,
        }
        for i, c in enumerate(gen.choices)
    ]
    return dumps({
        "id": meta["id"],
        "object": "chat.completion",
        "created": meta["created"],
        "model": meta["model"],
        "choices": choices,
        "usage": common.usage(gen),
        "service_tier": "default",
        "system_fingerprint": meta["fp"],
    })


class ChunkWriter:
    """Byte templates for one stream's chunks: no per-token objects beyond the text's JSON."""

    __slots__ = ("_head", "_tail", "_usage_null")

    def __init__(self, meta: dict, include_usage: bool) -> None:
        self._head = (
            b'data: {"id":' + dumps(meta["id"]) + b',"object":"chat.completion.chunk","created":'
            + str(meta["created"]).encode() + b',"model":' + dumps(meta["model"])
            + b',"service_tier":"default","system_fingerprint":' + dumps(meta["fp"])
            + b',"choices":[{"index":'
        )
        self._usage_null = include_usage
        self._tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    def content(self, index: int, text: str) -> bytes:
        return (self._head + str(index).encode() + b',"delta":{"content":' + dumps(text)
                + b'},"logprobs":null,"finish_reason":null}]' + self._tail)

    def role(self, index: int) -> bytes:
        return (self._head + str(index).encode()
                + b',"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,'
                b'"finish_reason":null}]' + self._tail)

    def finish(self, index: int, reason: str) -> bytes:
        return (self._head + str(index).encode() + b',"delta":{},"logprobs":null,"finish_reason":'
                + dumps(reason) + b"}]" + self._tail)

    def usage(self, usage: dict) -> bytes:
        head = self._head[: -len(b'[{"index":')]
        return head + b"[]," + b'"usage":' + dumps(usage) + b"}\n\n"


async def _stream(engine: Engine, gen: Generation, meta: dict, include_usage: bool) -> AsyncIterator[bytes]:
    w = ChunkWriter(meta, include_usage)
    choices = gen.choices

    def render(start: int, end: int) -> bytes:
        out = []
        for step in range(start, end):
            for i, c in enumerate(choices):
                if step == 0:
                    out.append(w.role(i))
                texts = c.texts
                if step < len(texts):
                    out.append(w.content(i, texts[step]))
                if step == len(texts) - 1 or (step == 0 and not texts):
                    out.append(w.finish(i, c.finish_reason))
        return b"".join(out)

    if gen.steps == 0:
        async for _ in engine.run(gen):
            pass
        yield render(0, 1)
    else:
        async for chunk in common.paced(engine, gen, render):
            yield chunk
    if include_usage:
        yield w.usage(common.usage(gen)) + common.DONE
    else:
        yield common.DONE
