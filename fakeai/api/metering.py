"""Usage accounting of the generating routes: what a served request counts for
(``app.state.usage``, see ``fakeai.telemetry.usage``)."""

from __future__ import annotations

from collections.abc import Callable

from ..engine.core import Generation


def record_generation(request, gen: Generation, model: str, sent: int | None = None) -> None:
    """Count a chat, completion or message; ``sent``: the decode steps a stream delivered
    (a stream cut short counts the tokens it sent; None: all of them)."""
    prompt, cached = gen.prompt_tokens, gen.cached_tokens
    if sent is None or sent >= gen.steps:
        audio = sum(c.audio_tokens for c in gen.choices)
        out = gen.completion_tokens + gen.unreturned_tokens + audio
        override = getattr(gen, "usage_override", None)
        if override:  # a scripted scenario's usage: count what the response reports
            prompt = override.get("prompt_tokens", prompt)
            cached = override.get("cached_tokens", cached)
            out = override.get("completion_tokens", out)
    else:
        audio = 0
        out = sum(min(sent, len(c.ids)) for c in gen.choices)
    request.app.state.usage.record(
        "completions", model, request=request, input_tokens=prompt, input_cached_tokens=cached,
        output_tokens=out, output_audio_tokens=audio, service_tier="default")


def on_stream_close(request, gen: Generation, model: str) -> Callable[[int], None]:
    """The ``on_close`` of ``common.paced`` that counts a stream when it ends."""
    return lambda sent: record_generation(request, gen, model, sent)


def record(request, kind: str, model: str, **fields) -> None:
    """Count one request of another kind (embeddings, images, audio...)."""
    request.app.state.usage.record(kind, model, request=request, **fields)
