"""``POST /v1/completions`` (legacy): string, list, token and token-list prompts, echo, best_of."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from fastapi import APIRouter, Request

from ..engine.core import Choice, Engine, GenParams, Generation, script_timing_and_usage
from ..engine.latency import Timing
from ..engine.logprobs import chat_logprobs, completion_logprobs
from ..engine.output import OutputSpec
from ..schemas.common import stop_tuple
from ..schemas.completions import CompletionRequest
from ..security.hooks import admit, settle
from . import chaos, common, metering
from .body import parse, read_json, request_body
from .common import dumps
from .errors import APIError

router = APIRouter(tags=["completions"])

_REQUEST_SCHEMA = request_body(CompletionRequest)


def _prompts(prompt, tok) -> list[tuple[str, list[int]]]:
    """(text, token ids) per prompt."""
    if prompt is None:
        prompt = "<|endoftext|>"
    if isinstance(prompt, str):
        return [(prompt, tok.encode(prompt))]
    if not prompt:
        raise APIError(400, "Invalid 'prompt': empty array. Expected at least one prompt.", param="prompt")
    if isinstance(prompt[0], int):
        prompt = [prompt]
    out = []
    for p in prompt:
        if isinstance(p, str):
            out.append((p, tok.encode(p)))
            continue
        if not p:
            raise APIError(400, "Invalid 'prompt': a token array must not be empty.", param="prompt")
        bad = next((t for t in p if not tok.is_token(t)), None)
        if bad is not None:
            raise APIError(400, f"Invalid token in prompt: {bad}.", param="prompt")
        out.append((tok.decode(p), p))
    return out


@router.post("/v1/completions", openapi_extra=_REQUEST_SCHEMA, **common.SSE)
async def create_completion(request: Request):
    app = request.app.state
    raw = await read_json(request)
    req = parse(CompletionRequest, raw, app.settings.strict_params)
    engine: Engine = app.engine
    model = common.require_model(engine, req.model, "completions", "the completions endpoint")
    best_of = req.best_of or req.n
    if best_of < req.n:
        raise APIError(400, "best_of must be greater than or equal to n.", param="best_of")
    if req.stream and best_of > req.n:
        raise APIError(400, "best_of cannot be used with stream.", param="best_of")
    if req.stream_options is not None and not req.stream:
        raise APIError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options")
    prompts = _prompts(req.prompt, engine.tokenizer(model))
    seed_material = common.seed_material(raw, req.seed)
    params = GenParams(max_tokens=req.max_tokens, n=best_of, seed=req.seed, stop=stop_tuple(req.stop),
                       ignore_eos=req.ignore_eos, min_tokens=req.min_tokens, seed_material=seed_material)
    spec = chaos.scripted(request, raw, OutputSpec(top_logprobs=req.logprobs))
    await admit(request, model, sum(len(ids) for _, ids in prompts), 16 if req.max_tokens is None else req.max_tokens,
                best_of * len(prompts), "\n".join(t for t, _ in prompts))
    gen, texts = _generate(engine, model, prompts, params, req, spec, common.arrival(request),
                           common.route_hints(request))
    await settle(request, gen.prompt_tokens + gen.completion_tokens + gen.unreturned_tokens)
    meta = {"id": common.new_id("cmpl-"), "model": req.model, "created": common.now(),
            "fp": common.fingerprint(model.id)}
    scored = _scored_prompts(engine.tokenizer(model), prompts, req.n, req.logprobs) \
        if req.echo and req.logprobs is not None else None
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return common.sse_response(_stream(engine, gen, meta, include_usage, texts if req.echo else None, scored,
                                           metering.on_stream_close(request, gen, req.model)))
    await common.held(request, engine.complete(gen))
    metering.record_generation(request, gen, req.model)
    return common.json_response(_render(gen, meta, texts if req.echo else None, scored))


def _generate(engine, model, prompts, params: GenParams, req: CompletionRequest, spec: OutputSpec,
              arrival: float | None, hints=None):
    """One generation per prompt, batched into one: choices prompt-major, n per prompt."""
    choices: list[Choice] = []
    prompt_texts: list[str] = []
    prompt_tokens = completion_extra = 0
    ttft = itl = 0.0
    for i, (text, ids) in enumerate(prompts):
        count = len(ids)
        p = params if params.seed is None else replace(params, seed_material=params.seed_material + bytes([i % 256]))
        if req.max_tokens == 0:
            g = Generation(model, count, [Choice([], [], "length") for _ in range(p.n)],
                           engine.latency(model).timing(count))
        else:
            g = engine.generate(model, count, p, text, param="prompt", spec=spec)
        prompt_tokens += count
        completion_extra += sum(len(c.ids) for c in g.choices[req.n:])  # best_of losers are billed
        choices.extend(g.choices[: req.n])
        prompt_texts.extend([text] * req.n)
        ttft, itl = max(ttft, g.timing.ttft), max(itl, g.timing.itl)
    gen = Generation(model, prompt_tokens, choices, Timing(ttft, itl), arrival=arrival, endpoint="completions",
                     prompt_ids=prompts[0][1] if len(prompts) == 1 else None, max_tokens=req.max_tokens,
                     hints=hints, kv_transfer=req.kv_transfer_params)
    gen.unreturned_tokens = completion_extra
    if spec.script is not None:
        script_timing_and_usage(gen, spec.script)
    return gen, prompt_texts


def _usage(gen: Generation) -> dict:
    u = common.usage(gen, gen.completion_tokens + gen.unreturned_tokens)
    del u["prompt_tokens_details"], u["completion_tokens_details"]
    return u


def _scored_prompts(tok, prompts: list[tuple[str, list[int]]], n: int, top: int) -> list[list[dict]]:
    """Per choice, the tokens of the prompt it echoes, scored (``echo`` with ``logprobs``). A prompt
    is scored the same every time. (OpenAI gives the first token a null logprob, which its own
    spec does not allow: here it has one like the others.)"""
    out: list[list[dict]] = []
    for _, ids in prompts:
        key = hashlib.blake2b(b"".join(t.to_bytes(4, "little") for t in ids), digest_size=8).digest()
        out.extend([chat_logprobs(tok, ids, [tok.token_text(t) for t in ids], random.Random(key), top)] * n)
    return out


def _logprobs(c: Choice, scored: list[dict] | None, offset: int) -> dict | None:
    """A choice's ``logprobs``: its echoed prompt's tokens when scored, then its own."""
    if scored is None:
        return None if c.logprobs is None else completion_logprobs(c.logprobs, offset)
    head, tail = completion_logprobs(scored), completion_logprobs(c.logprobs or [], offset)
    return {k: head[k] + tail[k] for k in head}


def _render(gen: Generation, meta: dict, echo: list[str] | None, scored: list[list[dict]] | None = None) -> bytes:
    choices = [
        {"text": (echo[i] if echo else "") + c.text, "index": i,
         "logprobs": _logprobs(c, scored[i] if scored else None, len(echo[i]) if echo else 0),
         "finish_reason": c.finish_reason}
        for i, c in enumerate(gen.choices)
    ]
    body = {"id": meta["id"], "object": "text_completion", "created": meta["created"],
            "model": meta["model"], "system_fingerprint": meta["fp"], "choices": choices, "usage": _usage(gen)}
    if gen.kv_transfer_params is not None:  # vLLM P/D: where the decode side finds this prompt's KV
        body["kv_transfer_params"] = gen.kv_transfer_params
    return dumps(body)


async def _stream(engine: Engine, gen: Generation, meta: dict, include_usage: bool,
                  echo: list[str] | None, scored: list[list[dict]] | None = None,
                  on_close: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
    head = (b'data: {"id":' + dumps(meta["id"]) + b',"object":"text_completion","created":'
            + str(meta["created"]).encode() + b',"model":' + dumps(meta["model"])
            + b',"system_fingerprint":' + dumps(meta["fp"]) + b',"choices":[')
    tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
    choices = gen.choices

    offsets = [len(echo[i]) if echo else 0 for i in range(len(choices))]

    def chunk(i: int, text: str, finish: str | None, lp: bytes = b"null") -> bytes:
        return (head + b'{"text":' + dumps(text) + b',"index":' + str(i).encode()
                + b',"logprobs":' + lp + b',"finish_reason":' + dumps(finish) + b"}" + tail)

    def token_chunk(i: int, c: Choice, step: int) -> bytes:
        text = c.texts[step]
        if c.logprobs is None:
            return chunk(i, text, None)
        lp = completion_logprobs([c.logprobs[step]], offsets[i])
        offsets[i] += len(text)
        return chunk(i, text, None, dumps(lp))

    def render(start: int, end: int) -> bytes:
        out = []
        for step in range(start, end):
            for i, c in enumerate(choices):
                if step == 0 and echo:
                    out.append(chunk(i, echo[i], None, dumps(completion_logprobs(scored[i])) if scored else b"null"))
                if step < len(c.texts):
                    out.append(token_chunk(i, c, step))
                if step == len(c.texts) - 1 or (step == 0 and not c.texts):
                    out.append(chunk(i, "", c.finish_reason))
        return b"".join(out)

    def closing() -> bytes:
        return head + b'],"usage":' + dumps(_usage(gen)) + b"}\n\n" if include_usage else b""

    async for data in common.paced(engine, gen, render, closing, on_close=on_close):
        yield data
