"""Anthropic's streaming events as byte templates: no per-token objects on the hot path.

Each frame is ``event: NAME\\ndata: {json}\\n\\n``. The first write carries
``message_start`` (the message with empty content and the input usage) and a
``ping``; then each content block (thinking, text, or one per tool_use) opens
with ``content_block_start`` on its first step, sends one ``content_block_delta``
per token (``thinking_delta``, ``text_delta`` or an ``input_json_delta``
fragment; a thinking block ends with its ``signature_delta``) and closes with
``content_block_stop`` on its last step. ``message_delta`` (stop reason and
usage) and ``message_stop`` close the stream. A tool call's name tokens send
nothing: its name goes out whole in its block's start, as Anthropic does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..engine.core import Engine, Generation
from ..engine.output import Choice
from . import common
from .common import dumps

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_DELTA_USAGE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def event(name: bytes, payload: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + payload + b"\n\n"


def tool_use_id(call_id: str) -> str:
    """The engine's ``call_...`` id in Anthropic's ``toolu_...`` form."""
    return "toolu_" + call_id.removeprefix("call_")


def usage(gen: Generation) -> dict:
    o = gen.usage_override or {}  # a scenario's reported usage
    # Anthropic reports cache reads only for prompts marked with cache_control (not modelled yet);
    # the engine's automatic prefix cache (gen.cached_tokens) shortens the TTFT but is not billed.
    cached = o.get("cached_tokens", 0)
    return {
        "input_tokens": o.get("prompt_tokens", gen.prompt_tokens) - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": o.get("completion_tokens", gen.completion_tokens),
        "service_tier": "standard",
    }


@dataclass(slots=True)
class _Block:
    first: int  # step of content_block_start
    last: int  # step of content_block_stop
    start: bytes  # the content_block_start event
    delta: bytes | None  # a delta event up to the token's JSON string (None: no deltas)
    stop: bytes  # the content_block_stop event (after the signature_delta of a thinking block)
    args: tuple[int, int] | None = None  # tool_use: the steps that carry input fragments


def _opening(index: int, block: dict) -> bytes:
    return event(b"content_block_start", b'{"type":"content_block_start","index":' + str(index).encode()
                 + b',"content_block":' + dumps(block) + b"}")


def _delta(index: int, kind: bytes, field: bytes) -> bytes:
    return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":' + str(index).encode()
            + b',"delta":{"type":"' + kind + b'","' + field + b'":')


def _closing(index: int) -> bytes:
    return event(b"content_block_stop", b'{"type":"content_block_stop","index":' + str(index).encode() + b"}")


def blocks(c: Choice, signature: str, omit_thinking: bool) -> list[_Block]:
    """The content blocks of choice ``c`` and the steps each spans, in order."""
    out: list[_Block] = []
    last_step = len(c.ids) - 1
    if c.reasoning:
        sig = _delta(0, b"signature_delta", b"signature") + dumps(signature) + b"}}\n\n"
        out.append(_Block(0, c.reasoning - 1, _opening(0, {"type": "thinking", "thinking": "", "signature": ""}),
                          None if omit_thinking else _delta(0, b"thinking_delta", b"thinking"),
                          sig + _closing(0)))
    if c.tool_calls:
        for call in c.tool_calls:
            k = len(out)
            head = {"type": "tool_use", "id": tool_use_id(call.id), "name": call.name, "input": {}}
            out.append(_Block(call.header_step, min(max(call.header_step, call.args_end - 1), last_step),
                              _opening(k, head), _delta(k, b"input_json_delta", b"partial_json"), _closing(k),
                              (call.args_start, call.args_end)))
    elif last_step >= c.reasoning:
        k = len(out)
        out.append(_Block(c.reasoning, last_step, _opening(k, {"type": "text", "text": ""}),
                          _delta(k, b"text_delta", b"text"), _closing(k)))
    return out


async def stream(engine: Engine, gen: Generation, meta: dict,
                 on_close: Callable[[int], None] | None = None) -> AsyncIterator[bytes]:
    """The events of ``gen`` (one choice), paced by the engine like chat streaming."""
    c = gen.choices[0]
    texts = c.texts
    plan = blocks(c, meta["signature"], meta["omit_thinking"])
    message = {"id": meta["id"], "type": "message", "role": "assistant", "model": meta["model"], "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": usage(gen) | {"output_tokens": 0}}
    opening = event(b"message_start", b'{"type":"message_start","message":' + dumps(message) + b"}") + PING
    k = 0  # the block the next step belongs to (steps only move forward)

    def render(start: int, end: int) -> bytes:
        nonlocal k
        out = [opening] if start == 0 else []
        for step in range(start, min(end, len(texts))):
            while k < len(plan) and plan[k].last < step:
                k += 1
            if k == len(plan):
                break
            b = plan[k]
            if step < b.first:
                continue  # a tool call's name tokens
            if step == b.first:
                out.append(b.start)
            if b.delta is not None and (b.args is None or b.args[0] <= step < b.args[1]):
                out.append(b.delta + dumps(texts[step]) + b"}}\n\n")
            if step == b.last:
                out.append(b.stop)
        return b"".join(out)

    def closing() -> bytes:
        return event(b"message_delta", dumps({
            "type": "message_delta",
            "delta": {"stop_reason": meta["stop_reason"], "stop_sequence": meta["stop_sequence"]},
            "usage": {k: v for k, v in usage(gen).items() if k in _DELTA_USAGE},
        }))

    async for chunk in common.paced(engine, gen, render, closing, done=_STOP, on_close=on_close):
        yield chunk
