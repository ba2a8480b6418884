"""The simulated inference engine: one instance serves every generating endpoint.

``Engine.generate`` decides *what* a request produces (token ids per choice,
finish reasons, prompt token count) and *when* (its TTFT and ITL from the
latency model). ``Engine.run`` then paces it on the shared timer behind the
capacity gate. Nothing here knows about HTTP or wire formats.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..registry import ModelDef, ModelRegistry
from . import schedule
from .capacity import Capacity
from .clock import Ticker
from .errors import ContextLengthExceeded, EngineError, ModelNotFound
from .latency import LatencyModel, Timing
from .lengths import natural_length
from .compose import add_logprobs, apply_stop, compose, reasoning_length
from .output import Choice, OutputSpec
from .multimodal import family_for_model
from .prompt import count_chat
from .text import TextGenerator, get_text_generator
from .tokenizer import Tokenizer, get_tokenizer

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
    def __init__(self, settings, registry: ModelRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.ticker = Ticker(settings.timer_resolution_ms / 1000.0)
        self.capacity = Capacity(settings.max_num_seqs)
        self._latency: dict[str, LatencyModel] = {}

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
            s = self.settings
            lm = LatencyModel.build(model.latency, s.ttft_ms, s.itl_ms, s.jitter, s.jitter_dist)
            if len(self._latency) < 4096:
                self._latency[model.id] = lm
        return lm

    def _text(self, model: ModelDef) -> TextGenerator:
        return get_text_generator(model.tokenizer)

    # -- prompt -------------------------------------------------------------------
    def count_chat_prompt(self, model: ModelDef, messages: list[dict[str, Any]],
                          tools: list[dict] | None = None) -> int:
        return count_chat(self.tokenizer(model), messages, family_for_model(model.parent or model.id),
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
        if params.seed is None:
            return random.Random(_entropy.getrandbits(64))
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
                 arrival: float | None = None, spec: OutputSpec = OutputSpec()) -> Generation:
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
            choice = compose(textgen, spec, rng, budget, target + reasoning, words, prompt_text, reasoning)
            apply_stop(choice, params.stop)
            if spec.top_logprobs is not None:
                add_logprobs(choice, textgen, rng, spec.top_logprobs)
            choices.append(choice)
        timing = self.latency(model).timing(prompt_tokens, rng)
        return Generation(model, prompt_tokens, choices, timing, arrival=arrival)

    # -- pacing ---------------------------------------------------------------------
    async def _admit(self, gen: Generation) -> float:
        """Wait for a slot; return the deadline of the first token.

        A request admitted at once started at its arrival, so the time spent
        parsing and tokenizing it is part of its TTFT rather than added to it;
        a queued one starts when its slot frees.
        """
        waited = await self.capacity.acquire()
        now = self.ticker.time()
        start = now if waited or gen.arrival is None else min(gen.arrival, now)
        return start + gen.timing.ttft

    async def run(self, gen: Generation) -> AsyncIterator[tuple[int, int]]:
        """Yield ``(start, end)`` step ranges as they fall due, behind the capacity gate.

        Late steps are coalesced: everything already due comes out in one range.
        """
        total = gen.steps
        first = await self._admit(gen)
        try:
            ticker = self.ticker
            itl = gen.timing.itl
            sent = 0
            if total == 0:
                await ticker.sleep_until(first)
                return
            while sent < total:
                due = schedule.due_count(first, itl, ticker.time(), total)
                if due > sent:
                    yield sent, due
                    sent = due
                    continue
                await ticker.sleep_until(schedule.deadline(first, itl, sent))
        finally:
            self.capacity.release()

    async def simulate(self, model: ModelDef, prompt_tokens: int, output_steps: int = 0,
                       arrival: float | None = None) -> Generation:
        """Serve a request that generates no text (embeddings, rerank, images, speech...)
        through the same latency model and capacity gate: a prefill of ``prompt_tokens``
        then ``output_steps`` decode steps. Returns once it is done."""
        steps = [0] * output_steps
        gen = Generation(model, prompt_tokens, [Choice(steps, [""] * output_steps, "stop")] if output_steps else [],
                         self.latency(model).timing(prompt_tokens), arrival=arrival)
        await self.complete(gen)
        return gen

    async def complete(self, gen: Generation) -> None:
        """Hold a non-streaming request until its last token is due."""
        first = await self._admit(gen)
        try:
            await self.ticker.sleep_until(schedule.finish_time(first, gen.timing.itl, gen.steps))
        finally:
            self.capacity.release()
