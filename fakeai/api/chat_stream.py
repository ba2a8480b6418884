"""Chat completion chunks as byte templates: no per-token objects on the hot path.

Each step of a choice becomes at most one chunk: a reasoning delta, a content
delta (with its logprobs when asked), a tool call's header or one of its
argument fragments. The role opens each choice's first step and a finish
chunk closes its last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from ..engine.core import Engine, Generation
from ..engine.output import Choice
from . import common
from .common import dumps


class ChunkWriter:
    __slots__ = ("_head", "_tail")

    def __init__(self, meta: dict, include_usage: bool) -> None:
        self._head = (
            b'data: {"id":' + dumps(meta["id"]) + b',"object":"chat.completion.chunk","created":'
            + str(meta["created"]).encode() + b',"model":' + dumps(meta["model"])
            + b',"service_tier":"default","system_fingerprint":' + dumps(meta["fp"])
            + b',"choices":[{"index":'
        )
        self._tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    def delta(self, index: int, delta: bytes, logprobs: bytes = b"null") -> bytes:
        return (self._head + str(index).encode() + b',"delta":' + delta + b',"logprobs":' + logprobs
                + b',"finish_reason":null}]' + self._tail)

    def content(self, index: int, text: str) -> bytes:
        return (self._head + str(index).encode() + b',"delta":{"content":' + dumps(text)
                + b'},"logprobs":null,"finish_reason":null}]' + self._tail)

    def role(self, index: int) -> bytes:
        return self.delta(index, b'{"role":"assistant","content":"","refusal":null}')

    def finish(self, index: int, reason: str) -> bytes:
        return (self._head + str(index).encode() + b',"delta":{},"logprobs":null,"finish_reason":'
                + dumps(reason) + b"}]" + self._tail)

    def usage(self, usage: dict) -> bytes:
        head = self._head[: -len(b'[{"index":')]
        return head + b'[],"usage":' + dumps(usage) + b"}\n\n"


def _step_chunk(w: ChunkWriter, i: int, c: Choice, step: int) -> bytes | None:
    """The chunk of choice ``i`` at ``step`` beyond plain content, or None for none."""
    text = c.texts[step]
    if step < c.reasoning:
        t = dumps(text)
        return w.delta(i, b'{"reasoning_content":' + t + b',"reasoning":' + t + b"}")
    if c.tool_calls:
        for k, call in enumerate(c.tool_calls):
            if step == call.header_step:
                if c.legacy_function:
                    return w.delta(i, b'{"function_call":{"name":' + dumps(call.name) + b',"arguments":""}}')
                return w.delta(i, b'{"tool_calls":[{"index":' + str(k).encode() + b',"id":' + dumps(call.id)
                               + b',"type":"function","function":{"name":' + dumps(call.name)
                               + b',"arguments":""}}]}')
            if call.args_start <= step < call.args_end:
                if c.legacy_function:
                    return w.delta(i, b'{"function_call":{"arguments":' + dumps(text) + b"}}")
                return w.delta(i, b'{"tool_calls":[{"index":' + str(k).encode()
                               + b',"function":{"arguments":' + dumps(text) + b"}}]}")
        return None
    if c.refusal:
        return w.delta(i, b'{"refusal":' + dumps(text) + b"}")
    if c.logprobs is None:
        return w.content(i, text)
    lp = c.logprobs[step - c.reasoning]
    return w.delta(i, b'{"content":' + dumps(text) + b"}",
                   b'{"content":[' + dumps(lp) + b'],"refusal":null}')


def _audio_chunk(w: ChunkWriter, i: int, audio: dict, text: str, first: bool) -> bytes:
    """A spoken answer streams its transcript token by token (the id opens it)."""
    head = b'{"audio":{"id":' + dumps(audio["id"]) + b',"transcript":' if first else b'{"audio":{"transcript":'
    return w.delta(i, head + dumps(text) + b"}}")


async def stream(engine: Engine, gen: Generation, meta: dict, include_usage: bool,
                 on_close: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
    w = ChunkWriter(meta, include_usage)
    choices = gen.choices
    audio = meta.get("audio") or [None] * len(choices)
    plain = [not (c.reasoning or c.tool_calls or c.refusal or c.logprobs is not None or audio[i])
             for i, c in enumerate(choices)]

    def render(start: int, end: int) -> bytes:
        out = []
        for step in range(start, end):
            for i, c in enumerate(choices):
                if step == 0:
                    out.append(w.role(i))
                texts = c.texts
                if step < len(texts):
                    if plain[i]:
                        out.append(w.content(i, texts[step]))
                    elif audio[i] is not None and step >= c.reasoning:
                        out.append(_audio_chunk(w, i, audio[i], texts[step], step == c.reasoning))
                    else:
                        chunk = _step_chunk(w, i, c, step)
                        if chunk is not None:
                            out.append(chunk)
                if step == len(texts) - 1 or (step == 0 and not texts):
                    if audio[i] is not None:  # the encoded audio closes the spoken answer
                        out.append(w.delta(i, b'{"audio":{"id":' + dumps(audio[i]["id"]) + b',"data":'
                                           + dumps(audio[i]["data"]) + b',"expires_at":'
                                           + str(audio[i]["expires_at"]).encode() + b"}}"))
                    out.append(w.finish(i, c.finish_reason))
        return b"".join(out)

    def closing() -> bytes:
        return w.usage(common.usage(gen)) if include_usage else b""

    async for chunk in common.paced(engine, gen, render, closing, on_close=on_close):
        yield chunk
