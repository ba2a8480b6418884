"""Typed model definitions for the catalog.

Everything here is a frozen, slotted dataclass: attribute reads are plain slot
loads, instances are hashable and safe to share between requests and threads.
Types are not enforced at construction (the catalog loader in
:mod:`fakeai.registry.registry` does that for data read from files); value
ranges and enumerations are checked in ``__post_init__`` and reported as
:class:`FieldError`, a :class:`ValueError` that carries the offending field name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: Tokenizer encodings implemented by :mod:`fakeai.engine.tokenizer`.
TOKENIZERS: tuple[str, ...] = ("o200k_base", "cl100k_base", "o200k_harmony", "llama3", "qwen3")

#: Model families the simulator knows about.
PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "meta", "mistral", "deepseek", "nvidia", "qwen")

#: Distributions available for per-token latency jitter.
JITTER_DISTS: tuple[str, ...] = ("normal", "lognormal")


class FieldError(ValueError):
    """A value is invalid; ``field`` names it (dotted for nested tables, e.g. ``latency.itl_ms``)."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


def _non_negative(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value < 0:
            raise FieldError(name, f"must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """Timing model of one model's serving stack.

    Time to first token is ``prefill_overhead_ms + prompt_tokens * prefill_ms_per_token``;
    each later token arrives ``itl_ms`` after the previous one. ``jitter`` is the
    relative standard deviation applied to those durations (0.05 = 5 %), drawn from
    ``jitter_dist`` ("normal" or "lognormal").
    """

    prefill_ms_per_token: float
    prefill_overhead_ms: float
    itl_ms: float
    jitter: float = 0.0
    jitter_dist: str = "normal"

    def __post_init__(self) -> None:
        _non_negative(self, "prefill_ms_per_token", "prefill_overhead_ms", "itl_ms", "jitter")
        if self.jitter_dist not in JITTER_DISTS:
            raise FieldError("jitter_dist", f"must be one of {JITTER_DISTS}, got {self.jitter_dist!r}")


@dataclass(frozen=True, slots=True)
class Pricing:
    """List price in USD per million tokens (0 where a model is not billed per token)."""

    input: float
    cached_input: float
    output: float

    def __post_init__(self) -> None:
        _non_negative(self, "input", "cached_input", "output")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Which API surfaces a model serves. Every flag defaults to False."""

    chat: bool = False
    completions: bool = False
    tools: bool = False
    vision: bool = False
    video: bool = False
    audio: bool = False
    reasoning: bool = False
    embeddings: bool = False
    images: bool = False
    rerank: bool = False
    moderation: bool = False
    tts: bool = False
    transcription: bool = False
    realtime: bool = False  # speech-to-speech sessions on the /v1/realtime WebSocket

    def as_dict(self) -> dict[str, bool]:
        """All flags as ``{name: bool}``, in declaration order."""
        return {name: getattr(self, name) for name in CAPABILITY_NAMES}

    def enabled(self) -> tuple[str, ...]:
        """Names of the flags that are True."""
        return tuple(name for name in CAPABILITY_NAMES if getattr(self, name))

    @classmethod
    def of(cls, *names: str) -> Capabilities:
        """Build from flag names: ``Capabilities.of("chat", "tools")``."""
        unknown = [n for n in names if n not in CAPABILITY_NAMES]
        if unknown:
            raise FieldError("capabilities", f"unknown capability {unknown[0]!r}; known: {CAPABILITY_NAMES}")
        return cls(**{n: True for n in names})


CAPABILITY_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Capabilities))


@dataclass(frozen=True, slots=True)
class ModelDef:
    """One servable model.

    ``created`` is unix seconds (what ``/v1/models`` reports). ``tokenizer`` names
    an encoding from :data:`TOKENIZERS`; ``tokenizer_exact`` is False when that
    encoding only approximates the model's real vocabulary. ``parent`` links an
    alias or fine-tune to its base model; ``aliases`` are other ids that resolve
    to this definition.
    """

    id: str
    owned_by: str
    created: int
    provider: str
    context_window: int
    max_output_tokens: int
    capabilities: Capabilities
    tokenizer: str
    tokenizer_exact: bool
    latency: LatencyProfile
    pricing: Pricing
    embedding_dimensions: int | None = None
    parent: str | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise FieldError("id", "must be a non-empty string")
        if self.provider not in PROVIDERS:
            raise FieldError("provider", f"must be one of {PROVIDERS}, got {self.provider!r}")
        if self.tokenizer not in TOKENIZERS:
            raise FieldError("tokenizer", f"must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.context_window <= 0:
            raise FieldError("context_window", f"must be > 0, got {self.context_window!r}")
        if self.max_output_tokens < 0:
            raise FieldError("max_output_tokens", f"must be >= 0, got {self.max_output_tokens!r}")
        if self.created < 0:
            raise FieldError("created", f"must be >= 0, got {self.created!r}")
        if self.embedding_dimensions is not None and self.embedding_dimensions <= 0:
            raise FieldError("embedding_dimensions", f"must be > 0, got {self.embedding_dimensions!r}")
        if self.capabilities.embeddings and self.embedding_dimensions is None:
            raise FieldError("embedding_dimensions", "required for embedding models")
        if not isinstance(self.aliases, tuple):
            object.__setattr__(self, "aliases", tuple(self.aliases))
        if self.id in self.aliases:
            raise FieldError("aliases", f"a model cannot alias its own id {self.id!r}")
