"""``POST /v1/chat/completions``: wire format only; the engine decides content and timing."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from ..engine.core import Engine, Generation, GenParams
from ..engine.output import Choice
from ..engine.prompt import last_user_text
from ..lazy import lazy_import
from ..schemas.chat import ChatCompletionRequest, check_messages
from ..schemas.common import stop_tuple
from ..security.hooks import admit, settle
from . import chaos, chat_refusal, chat_stored, chat_stream, common, metering
from .body import parse, read_json, request_body
from .chat_options import audio_output, check_model_params, output_spec
from .common import dumps
from .errors import APIError

router = APIRouter(tags=["chat"])
speech = lazy_import("fakeai.services.audio")

_REQUEST_SCHEMA = request_body(ChatCompletionRequest)


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


@router.post("/v1/chat/completions", openapi_extra=_REQUEST_SCHEMA, **common.SSE)
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
    if req.metadata:
        chat_stored.check_store(req)
    engine: Engine = app.engine
    model = common.require_model(engine, req.model, "chat", "chat completions")
    check_model_params(req, model)
    prompt_ids = engine.chat_prompt(model, req.messages, req.tools or req.functions)
    prompt_tokens = len(prompt_ids)
    spec = chaos.scripted(request, raw, output_spec(req))
    prompt = last_user_text(req.messages)
    await admit(request, model, prompt_tokens, req.completion_limit, req.n, prompt)
    gen = engine.generate(model, prompt_tokens, _params(req, raw), prompt,
                          arrival=common.arrival(request), spec=spec, endpoint="chat", prompt_ids=prompt_ids,
                          hints=common.route_hints(request), kv_transfer=req.kv_transfer_params)
    meta = {"id": common.new_id("chatcmpl-"), "model": req.model, "created": common.now(),
            "fp": common.fingerprint(model.id)}
    if app.settings.safety_refusals and chat_refusal.refuses(engine, prompt):
        return await chat_refusal.respond(request, engine, gen, meta, req.stream, bool(
            req.stream_options and req.stream_options.include_usage))
    await settle(request, gen.prompt_tokens + gen.completion_tokens)
    audio = audio_output(req, model)
    if audio is not None:
        meta["audio"] = await _speak(gen, *audio)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = chat_stream.stream(engine, gen, meta, include_usage,
                                    metering.on_stream_close(request, gen, req.model))
        if req.store:  # kept once the whole completion has been sent
            events = chat_stored.then(events, lambda: chat_stored.save(app, render_completion(gen, meta), req))
        return common.sse_response(events)
    await common.held(request, engine.complete(gen))
    metering.record_generation(request, gen, req.model)
    body = render_completion(gen, meta)
    if req.store:
        await chat_stored.save(app, body, req)
    return common.json_response(body)


async def _speak(gen: Generation, voice: str, fmt: str) -> list[dict | None]:
    """Each choice's content spoken (``message.audio``); its audio tokens join the usage."""
    loop = asyncio.get_running_loop()
    out: list[dict | None] = []
    for c in gen.choices:
        if c.tool_calls:
            out.append(None)
            continue
        audio = await loop.run_in_executor(None, speech.chat_audio, c.text, voice, fmt)
        c.audio_tokens = speech.audio_tokens(speech.speech_seconds(c.text))
        out.append(audio)
    return out


def _message(c: Choice, audio: dict | None = None) -> dict:
    msg: dict = {"role": "assistant", "content": c.content, "refusal": c.refusal_text, "annotations": []}
    if audio is not None:  # spoken answer: the text is the transcript, as OpenAI
        msg["content"] = None
        msg["audio"] = audio
    if c.reasoning:
        msg["reasoning_content"] = msg["reasoning"] = c.reasoning_text
    if c.legacy_function and c.tool_calls:
        call = c.tool_calls[0]
        msg["function_call"] = {"name": call.name, "arguments": call.arguments}
    elif c.tool_calls:
        msg["tool_calls"] = [{"id": t.id, "type": "function",
                              "function": {"name": t.name, "arguments": t.arguments}} for t in c.tool_calls]
    return msg


def render_completion(gen: Generation, meta: dict) -> bytes:
    choices = [
        {
            "index": i,
            "message": _message(c, (meta.get("audio") or [None] * (i + 1))[i]),
            "logprobs": None if c.logprobs is None else {"content": c.logprobs, "refusal": None},
            "finish_reason": c.finish_reason,
        }
        for i, c in enumerate(gen.choices)
    ]
    body = {
        "id": meta["id"],
        "object": "chat.completion",
        "created": meta["created"],
        "model": meta["model"],
        "choices": choices,
        "usage": common.usage(gen),
        "service_tier": "default",
        "system_fingerprint": meta["fp"],
    }
    if gen.kv_transfer_params is not None:  # vLLM P/D: where the decode side finds this prompt's KV
        body["kv_transfer_params"] = gen.kv_transfer_params
    return dumps(body)
