"""Safety refusals (``--safety-refusals``): a chat prompt that moderation flags is answered
with a refusal, as OpenAI's models do: ``message.refusal`` holds the text, ``content`` is
null and ``finish_reason`` is ``stop``; streamed, the text arrives as ``delta.refusal``.

The refusal is timed like any answer (the request's TTFT, then one token per ITL) and
billed as completion tokens.
"""

from __future__ import annotations

from ..engine.core import Engine, Generation
from ..engine.output import Choice
from ..security.hooks import settle
from ..services.moderation import moderate
from . import common
from .chat_stream import ChunkWriter
from .common import dumps

REFUSAL = "I'm sorry, but I can't help with that."
_MODERATION_MODEL = "omni-moderation-latest"


def refuses(engine: Engine, prompt: str) -> bool:
    """Whether moderation flags the user's prompt."""
    return bool(prompt) and moderate(engine.model(_MODERATION_MODEL), [prompt], [])["flagged"]


async def respond(request, engine: Engine, gen: Generation, meta: dict, stream: bool, include_usage: bool):
    tok = engine.tokenizer(gen.model)
    ids = tok.encode(REFUSAL)
    texts = [tok.token_text(i) for i in ids]
    gen.choices = [Choice(list(ids), list(texts), "stop") for _ in gen.choices]
    await settle(request, gen.prompt_tokens + gen.completion_tokens)
    if stream:
        return common.sse_response(_stream(engine, gen, meta, include_usage))
    await common.held(request, engine.complete(gen))
    return common.json_response(dumps({
        "id": meta["id"], "object": "chat.completion", "created": meta["created"], "model": meta["model"],
        "choices": [{"index": i, "message": {"role": "assistant", "content": None, "refusal": REFUSAL,
                                             "annotations": []},
                     "logprobs": None, "finish_reason": "stop"} for i in range(len(gen.choices))],
        "usage": common.usage(gen), "service_tier": "default", "system_fingerprint": meta["fp"],
    }))


async def _stream(engine: Engine, gen: Generation, meta: dict, include_usage: bool):
    w = ChunkWriter(meta, include_usage)
    texts = gen.choices[0].texts
    last = len(texts) - 1

    def render(start: int, end: int) -> bytes:
        out = []
        for step in range(start, end):
            for i in range(len(gen.choices)):
                if step == 0:
                    out.append(w.delta(i, b'{"role":"assistant","content":null,"refusal":""}'))
                out.append(w.delta(i, b'{"refusal":' + dumps(texts[step]) + b"}"))
                if step == last:
                    out.append(w.finish(i, "stop"))
        return b"".join(out)

    def closing() -> bytes:
        return w.usage(common.usage(gen)) if include_usage else b""

    async for chunk in common.paced(engine, gen, render, closing):
        yield chunk
