"""Prices of recorded usage: the catalog's ``pricing`` (USD per 1M tokens), plus the few
list prices OpenAI does not express per token (kept here; docs/organization.md).

Each usage group becomes line items ``(line_item, amount_usd, quantity, unit)``:

* tokens: ``"<model>, input"`` (uncached input at ``input``), ``"<model>, cached input"``
  (at ``cached_input``) and ``"<model>, output"``; audio and image tokens of a chat model
  are priced as its text tokens. Batch lines are named ``"<model>, batch input"`` etc.
  and cost half, as OpenAI's Batch API.
* DALL-E images per image by size (and quality for dall-e-3); GPT image models by
  their input and output tokens.
* tts-1 / tts-1-hd per character (the catalog's ``input`` is USD per 1M characters);
  other speech models by tokens. whisper-1 per second of audio ($0.006 a minute);
  other transcription models by tokens.
* Vector store storage at $0.10 per GiB-day (the free first GiB is not deducted),
  code interpreter sessions at $0.03, file search calls at $2.50 and web search calls
  at $10.00 per 1,000.

Items worth nothing (free models such as moderations) are left out.
"""

from __future__ import annotations

from ..registry import ModelRegistry
from ..registry.models import Pricing

M = 1_000_000
GIB = 1024 ** 3
BATCH_DISCOUNT = 0.5
WHISPER_PER_SECOND = 0.006 / 60
VECTOR_STORE_PER_GIB_DAY = 0.10
CODE_INTERPRETER_SESSION = 0.03
FILE_SEARCH_CALL = 2.50 / 1000
WEB_SEARCH_CALL = 10.00 / 1000
# (model family, size, quality) -> USD per image; quality "standard" when none applies
IMAGE_PRICES = {
    ("dall-e-2", "256x256", "standard"): 0.016,
    ("dall-e-2", "512x512", "standard"): 0.018,
    ("dall-e-2", "1024x1024", "standard"): 0.020,
    ("dall-e-3", "1024x1024", "standard"): 0.040,
    ("dall-e-3", "1024x1792", "standard"): 0.080,
    ("dall-e-3", "1792x1024", "standard"): 0.080,
    ("dall-e-3", "1024x1024", "hd"): 0.080,
    ("dall-e-3", "1024x1792", "hd"): 0.120,
    ("dall-e-3", "1792x1024", "hd"): 0.120,
}

Item = tuple[str, float, float, str | None]


class Pricer:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def _model(self, model_id: str):
        m = self.registry.get(model_id) or self.registry.resolve(model_id)
        return m

    def pricing(self, model_id: str) -> Pricing:
        m = self._model(model_id)
        return m.pricing if m is not None else self.registry.default_pricing

    def base(self, model_id: str) -> str:
        m = self._model(model_id)
        return (m.parent or m.id) if m is not None else model_id

    def line_items(self, kind: str, group: dict, v: dict[str, float]) -> list[Item]:
        """The priced items of one group's summed ``v`` (vector stores: ``v["gib_days"]``)."""
        model = group.get("model") or ""
        if kind == "vector_stores":
            gib_days = v.get("gib_days", 0.0)
            return _nonzero([("vector store storage", gib_days * VECTOR_STORE_PER_GIB_DAY, gib_days * 24,
                              "gibibyte_hours")])
        if kind == "code_interpreter_sessions":
            n = v.get("num_sessions", 0)
            return _nonzero([("code interpreter sessions", n * CODE_INTERPRETER_SESSION, n, "sessions")])
        if kind == "file_search_calls":
            n = v.get("num_requests", 0)
            return _nonzero([("file search tool calls", n * FILE_SEARCH_CALL, n, "calls")])
        if kind == "web_search_calls":
            n = v.get("num_requests", 0)
            return _nonzero([("web search tool calls", n * WEB_SEARCH_CALL, n, "calls")])
        base = self.base(model)
        if kind == "images" and base.startswith(("dall-e-2", "dall-e-3")):
            n = v.get("images", 0)
            fam = "dall-e-3" if base.startswith("dall-e-3") else "dall-e-2"
            quality = group.get("quality") if fam == "dall-e-3" else "standard"
            each = IMAGE_PRICES.get((fam, group.get("size"), quality or "standard"), 0.0)
            return _nonzero([(f"{model}, images", n * each, n, "images")])
        if kind == "audio_speeches" and base.startswith("tts-"):
            chars = v.get("characters", 0)
            return _nonzero([(f"{model}, characters", chars * self.pricing(model).input / M, chars, "characters")])
        if kind == "audio_transcriptions" and base.startswith("whisper"):
            secs = v.get("seconds", 0)
            return _nonzero([(f"{model}, audio", secs * WHISPER_PER_SECOND, secs, "duration_seconds")])
        return self._tokens(model, v, bool(group.get("batch")))

    def _tokens(self, model: str, v: dict[str, float], batch: bool) -> list[Item]:
        p = self.pricing(model)
        scale = BATCH_DISCOUNT if batch else 1.0
        word = "batch " if batch else ""
        cached = v.get("input_cached_tokens", 0)
        uncached = v.get("input_tokens", 0) - cached
        out = v.get("output_tokens", 0)
        return _nonzero([
            (f"{model}, {word}input", uncached * p.input / M * scale, uncached, "tokens"),
            (f"{model}, {word}cached input", cached * p.cached_input / M * scale, cached, "tokens"),
            (f"{model}, {word}output", out * p.output / M * scale, out, "tokens"),
        ])


def _nonzero(items: list[Item]) -> list[Item]:
    return [i for i in items if i[1] > 0]
