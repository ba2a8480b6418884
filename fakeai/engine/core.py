"""The simulated inference engine: one instance serves every generating endpoint.

``Engine.generate`` decides *what* a request produces (token ids per choice,
finish reasons, prompt token count) and its pinned timing (TTFT and ITL from the
latency model). ``Engine.run`` / ``complete`` then take it through the simulated
cluster (``engine.cluster``: routing, queueing, KV cache, step loop) and pace it on
the shared timer; every request leaves one ``RequestRecord`` on ``engine.events``.
Nothing here knows about HTTP or wire formats.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..registry import ModelDef, ModelRegistry
from ..registry.registry import DEFAULT_CHAT_MODEL
from .clock import Ticker
from .cluster.cluster import Cluster
from .cluster.router import Hints
from .cluster.sequence import Seq
from .errors import ContextLengthExceeded, EngineError, ModelNotFound
from .events import EventBus
from .latency import LatencyModel, Timing, noise_factor
from .lengths import natural_length
from .compose import add_logprobs, apply_stop, compose, reasoning_length, scripted, truncate_arguments
from .output import Choice, OutputSpec
from .multimodal import family_for_model
from .prompt import chat_ids, count_chat
from .text import TextGenerator, get_text_generator
from .tokenizer import Tokenizer, get_tokenizer

# files/batches: how many times faster than live traffic the current request's simulated time
# runs; the batch runner sets it (settings.batch_speedup) for the batch lines it dispatches.
speedup: ContextVar[float] = ContextVar("fakeai_speedup", default=1.0)


def _sped_up(timing: Timing) -> Timing:
    s = speedup.get()
    return timing if s == 1.0 else Timing(timing.ttft / s, timing.itl / s)


_entropy = random.Random()  # seeded from os.urandom: requests without a seed differ
_WORD = re.compile(r"[A-Za-z]{4,14}")
_STOPWORDS = frozenset(
    "this that with from have what when where which will would could should there their "
    "about into your them then than these those been were they some more most much very "
    "just like also make does tell please write give explain".split()
)


@dataclass(slots=True)
class GenParams:
    """Generation parameters, already validated by the API layer."""

    max_tokens: int | None = None
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    min_tokens: int = 0
    seed_material: bytes = b""  # canonical request bytes: the same request + seed -> same text


@dataclass(slots=True)
class Generation:
    model: ModelDef
    prompt_tokens: int
    choices: list[Choice]
    timing: Timing
    cached_tokens: int = 0
    arrival: float | None = None  # loop time the request arrived; TTFT counts from it
    unreturned_tokens: int = 0  # generated but not returned (best_of losers): billed all the same
    usage_override: dict[str, int] | None = None  # reported usage a scenario dictates (see common.usage)
    pin_ttft: bool = False  # a scenario's TTFT: fixed even where the latency is modelled
    pin_itl: bool = False  # a scenario's ITL, likewise
    endpoint: str = "chat"  # the API surface, for the request record
    prompt_ids: list[int] | None = None  # the prompt's token ids: prefix caching and routing
    max_tokens: int | None = None  # what the request asked for
    hints: Hints | None = None  # per-request routing overrides
    kv_transfer: dict | None = None  # the request's vLLM kv_transfer_params
    kv_transfer_params: dict | None = None  # what the response carries back (vLLM P/D prefill side)

    @property
    def completion_tokens(self) -> int:
        return sum(len(c.ids) for c in self.choices)

    @property
    def reasoning_tokens(self) -> int:
        return sum(c.reasoning for c in self.choices)

    @property
    def steps(self) -> int:
        """Decode steps: choices advance together, one token each per step."""
        return max((len(c.ids) for c in self.choices), default=0)


def script_timing_and_usage(gen: Generation, script) -> Generation:
    """A scenario's latency (TTFT/ITL) and reported usage applied to ``gen``."""
    if script.ttft is not None or script.itl is not None:
        t = gen.timing
        gen.timing = Timing(t.ttft if script.ttft is None else script.ttft, t.itl if script.itl is None else script.itl)
        gen.pin_ttft, gen.pin_itl = script.ttft is not None, script.itl is not None
    if script.usage:
        gen.usage_override = dict(script.usage)
    return gen


def topic_words(text: str, limit: int = 8) -> tuple[str, ...]:
    """Words of the prompt to weave into the answer, deduplicated case-insensitively;
    names keep their capital ("Paris"), other words are lowercased."""
    seen: dict[str, str] = {}
    for w in _WORD.findall(text[:2000]):
        lw = w.lower()
        if lw not in _STOPWORDS and lw not in seen:
            seen[lw] = w if w[0].isupper() and w[1:].islower() else lw
            if len(seen) >= limit:
                break
    return tuple(seen.values())


class Engine:
    def __init__(self, settings, registry: ModelRegistry, ticker: Ticker | None = None,
                 rank: int = 0, ranks: int = 1) -> None:
        self.settings = settings
        self.registry = registry
        self.ticker = ticker or Ticker(settings.timer_resolution_ms / 1000.0)
        self.events = EventBus()
        self._latency: dict[str, LatencyModel] = {}
        self._timing: dict[str, float | None] = {}  # run-time overrides of ttft_ms / itl_ms / jitter
        self.cluster = Cluster(settings, self.ticker, self.events, self.latency, rank, ranks)
        default = registry.get(DEFAULT_CHAT_MODEL)
        if default is not None:
            self.cluster.pool(default)  # the default model's workers are up from the start

    # -- models -----------------------------------------------------------------
    def model(self, model_id: str) -> ModelDef:
        m = self.registry.resolve(model_id, allow_any=self.settings.allow_any_model)
        if m is None:
            raise ModelNotFound(model_id)
        return m

    def tokenizer(self, model: ModelDef) -> Tokenizer:
        return get_tokenizer(model.tokenizer)

    def latency(self, model: ModelDef) -> LatencyModel:
        lm = self._latency.get(model.id)
        if lm is None:
            s, t = self.settings, self._timing
            lm = LatencyModel.build(model.latency, t.get("ttft_ms", s.ttft_ms), t.get("itl_ms", s.itl_ms),
                                    t.get("jitter", s.jitter), s.jitter_dist)
            if len(self._latency) < 4096:
                self._latency[model.id] = lm
        return lm

    def timing(self) -> dict[str, float | None]:
        """The pinned TTFT and ITL now in force (None: modelled from the catalog)."""
        s, t = self.settings, self._timing
        return {"ttft_ms": t.get("ttft_ms", s.ttft_ms), "itl_ms": t.get("itl_ms", s.itl_ms)}

    def reconfigure(self, **timing: float | None) -> None:
        """Change ``ttft_ms``, ``itl_ms`` or ``jitter`` at run time (the admin API), with the
        meaning of the settings of those names (None: the catalog's); later requests use them."""
        unknown = set(timing) - {"ttft_ms", "itl_ms", "jitter"}
        if unknown:
            raise TypeError(f"cannot reconfigure {sorted(unknown)}")
        self._timing.update(timing)
        self._latency.clear()

    def _text(self, model: ModelDef) -> TextGenerator:
        return get_text_generator(model.tokenizer)

    # -- prompt -------------------------------------------------------------------
    def count_chat_prompt(self, model: ModelDef, messages: list[dict[str, Any]],
                          tools: list[dict] | None = None) -> int:
        return count_chat(self.tokenizer(model), messages, family_for_model(model.parent or model.id),
                          model.capabilities, tools)

    def chat_prompt(self, model: ModelDef, messages: list[dict[str, Any]],
                    tools: list[dict] | None = None) -> list[int]:
        """The chat prompt's token ids (``len`` is ``count_chat_prompt``)."""
        return chat_ids(self.tokenizer(model), messages, family_for_model(model.parent or model.id),
                        model.capabilities, tools)

    # -- generation -----------------------------------------------------------------
    def max_new_tokens(self, model: ModelDef, prompt_tokens: int, requested: int | None,
                       param: str = "messages") -> int:
        """The completion budget, raising context_length_exceeded like OpenAI."""
        window = model.context_window
        if requested is not None:
            if prompt_tokens + requested > window:
                raise ContextLengthExceeded(window, prompt_tokens, requested, param)
            return requested
        if prompt_tokens >= window:
            raise ContextLengthExceeded(window, prompt_tokens, None, param)
        cap = self.settings.default_max_tokens or model.max_output_tokens
        return max(1, min(cap, model.max_output_tokens, window - prompt_tokens))

    def _rng(self, params: GenParams, index: int) -> random.Random:
        if params.seed is None:  # nothing to reproduce: one shared generator (a new one costs ~9 us)
            return _entropy
        h = hashlib.blake2b(params.seed_material, digest_size=8,
                            key=f"{params.seed}:{index}".encode())
        return random.Random(int.from_bytes(h.digest(), "little"))

    def reasons(self, model: ModelDef, effort: str | None) -> int:
        """The medium-effort reasoning budget if this request reasons, else 0."""
        if not model.capabilities.reasoning or effort == "none":
            return 0
        if effort is None and model.provider == "anthropic":
            return 0  # Claude thinks only when asked to
        return self.settings.reasoning_tokens

    def generate(self, model: ModelDef, prompt_tokens: int, params: GenParams,
                 prompt_text: str = "", param: str = "messages",
                 arrival: float | None = None, spec: OutputSpec = OutputSpec(), *,
                 endpoint: str = "chat", prompt_ids: list[int] | None = None,
                 hints: Hints | None = None, kv_transfer: dict | None = None) -> Generation:
        budget = self.max_new_tokens(model, prompt_tokens, params.max_tokens, param)
        if params.max_tokens is not None and params.min_tokens > params.max_tokens:
            raise EngineError("min_tokens must be less than or equal to max_tokens.", param="min_tokens")
        s = self.settings
        words = topic_words(prompt_text) if prompt_text else ()
        textgen = self._text(model)
        medium = self.reasons(model, spec.reasoning_effort)
        choices = []
        rng = None
        for i in range(params.n):
            rng = self._rng(params, i)
            if params.ignore_eos:
                target = budget
            else:
                want = natural_length(s.output_length, s.output_tokens, s.output_tokens_spread, rng)
                target = budget if want is None else max(want, params.min_tokens)
            reasoning = reasoning_length(spec.reasoning_effort or "medium", medium, rng) if medium else 0
            if spec.script is not None and spec.script.writes:  # a scenario's answer
                choice = scripted(textgen.tok, spec.script, budget, bool(spec.tools and spec.tools.legacy))
            else:
                choice = compose(textgen, spec, rng, budget, target + reasoning, words, prompt_text, reasoning)
            if spec.script is not None and spec.script.truncate_tools:
                truncate_arguments(textgen.tok, choice)
            apply_stop(choice, params.stop)
            if spec.top_logprobs is not None:
                add_logprobs(choice, textgen, rng, spec.top_logprobs)
            choices.append(choice)
        timing = _sped_up(self.latency(model).timing(prompt_tokens, rng))
        gen = Generation(model, prompt_tokens, choices, timing, arrival=arrival, endpoint=endpoint,
                         prompt_ids=prompt_ids, max_tokens=params.max_tokens, hints=hints,
                         kv_transfer=kv_transfer)
        return gen if spec.script is None else script_timing_and_usage(gen, spec.script)

    # -- pacing ---------------------------------------------------------------------------
    def _open(self, gen: Generation, stream: bool) -> Seq:
        if speedup.get() != 1.0:  # a batch line runs on its own (sped-up) clock, not the step loop's
            gen.pin_ttft = gen.pin_itl = True
        return self.cluster.open(gen, stream, self.latency(gen.model))

    async def _enter(self, seq: Seq) -> None:
        """Put ``seq`` into its worker. A modelled TTFT first spends the profile's fixed
        overhead (and, for a vLLM decode-side request, the KV transfer) from its arrival."""
        if seq.ttft is None:
            lat = self.latency(seq.gen.model)
            delay = lat.prefill_overhead_ms / 1000.0
            if lat.jitter > 0 and delay > 0:
                delay *= noise_factor(lat.jitter, lat.jitter_dist, _entropy)
            if seq.remote_prefill:
                delay += self.cluster.transfer_s(seq)
            await self.ticker.sleep_until(seq.arrival + delay)
        self.cluster.submit(seq)

    async def run(self, gen: Generation) -> AsyncIterator[tuple[int, int]]:
        """Yield ``(start, end)`` step ranges as they fall due.

        Late steps are coalesced: everything already due comes out in one range.
        """
        seq = self._open(gen, True)
        ticker = self.ticker
        total = seq.total
        sent = 0
        done = False
        try:
            await self._enter(seq)
            while True:
                if total:
                    due = seq.due(ticker.time())
                    if due > sent:
                        start, sent = sent, due  # (counted as sent even if the client leaves now)
                        yield start, due
                        continue
                    if sent >= total:
                        break
                    when = seq.wake_time(sent)
                else:  # nothing to decode: done at the first token
                    when = seq.first
                    if when is not None and ticker.time() >= when:
                        break
                if when is None:
                    await seq.progress()
                else:
                    await ticker.sleep_until(when)
            done = True
        finally:
            self.cluster.close(seq, total if done else sent, not done)

    async def complete(self, gen: Generation) -> None:
        """Hold a non-streaming request until its last token is due."""
        seq = self._open(gen, False)
        ticker = self.ticker
        done = False
        try:
            await self._enter(seq)
            while True:
                end = seq.end_time()
                if end is None:
                    await seq.progress()
                elif ticker.time() < end:
                    await ticker.sleep_until(end)
                else:
                    break
            done = True
        finally:
            self.cluster.close(seq, seq.total if done else seq.due(ticker.time()), not done)

    async def simulate(self, model: ModelDef, prompt_tokens: int, output_steps: int = 0,
                       arrival: float | None = None, *, endpoint: str = "chat",
                       hints: Hints | None = None) -> Generation:
        """Serve a request that generates no text (embeddings, rerank, images, speech...)
        through the cluster like any other: a prefill of ``prompt_tokens`` then
        ``output_steps`` decode steps. Returns once it is done."""
        steps = [0] * output_steps
        gen = Generation(model, prompt_tokens, [Choice(steps, [""] * output_steps, "stop")] if output_steps else [],
                         _sped_up(self.latency(model).timing(prompt_tokens)), arrival=arrival,
                         endpoint=endpoint, hints=hints)
        await self.complete(gen)
        return gen
