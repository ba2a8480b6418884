"""Which worker of a model's pool serves a request.

``kv`` is Dynamo's KV-aware cost (lib/kv-router/src/scheduling/selector.rs): for each
worker ``w``

    prefill_blocks(w) = (prompt tokens queued or prefilling on w + P - overlap(w) x block_size) / block_size
    decode_blocks(w)  = KV blocks active on w + ceil(P / block_size)
    cost(w)           = overlap_weight x prefill_blocks(w) + decode_blocks(w)

where ``overlap(w)`` is how many of the prompt's leading blocks w has cached. Temperature
0 picks the cheapest (ties: the smaller cache, then at random); T > 0 samples from
``softmax(-(cost - min) / ((max - min) x T))`` (uniform when all costs are equal).
Workers with a free slot are preferred when there are any.

``round_robin``, ``random`` and ``least_loaded`` (fewest running + waiting, then fewest
active blocks) ignore the cache. ``session`` sends every request carrying the same
session id (``x-session-id`` / ``x-dynamo-session-id``) to the worker its first request
went to, and routes the rest (and new sessions) with ``kv``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..errors import EngineError

STRATEGIES = ("kv", "round_robin", "random", "least_loaded", "session")
MAX_SESSIONS = 65536  # remembered session ids per model (least recently used forgotten)


@dataclass(frozen=True, slots=True)
class Hints:
    """Per-request routing overrides (from the request's headers)."""

    strategy: str | None = None
    session: str | None = None
    overlap_weight: float | None = None
    temperature: float | None = None

    @classmethod
    def parse(cls, strategy: str | None, session: str | None, weight: str | None,
              temperature: str | None) -> Hints:
        if strategy is not None and strategy not in STRATEGIES:
            raise EngineError(f"Invalid x-fakeai-router header {strategy!r}: expected one of "
                              f"{', '.join(STRATEGIES)}.", code="invalid_header")
        return cls(strategy, session or None, _number("x-fakeai-overlap-weight", weight),
                   _number("x-fakeai-router-temperature", temperature))


def _number(header: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not math.isfinite(x) or x < 0:
        raise EngineError(f"Invalid {header} header {value!r}: expected a number >= 0.", code="invalid_header")
    return x


def cost(worker, prompt: int, overlap: int, weight: float) -> float:
    """Dynamo's logit of ``worker`` for a ``prompt``-token request with ``overlap`` cached blocks."""
    bs = worker.block_size
    prefill = max(worker.sched.backlog + prompt - overlap * bs, 0) / bs
    decode = worker.kv_blocks_active + -(-prompt // bs)
    return weight * prefill + decode


def softmax_pick(costs: list[float], temperature: float, rng: random.Random) -> int:
    """Index sampled from the softmax of the negated, min-max normalised costs."""
    lo, hi = min(costs), max(costs)
    if hi == lo:
        return rng.randrange(len(costs))
    scale = 1.0 / ((hi - lo) * temperature)
    weights = [math.exp(-(c - lo) * scale) for c in costs]
    return rng.choices(range(len(costs)), weights)[0]


class Router:
    def __init__(self, strategy: str, overlap_weight: float, temperature: float,
                 rng: random.Random | None = None) -> None:
        self.strategy = strategy
        self.overlap_weight = overlap_weight
        self.temperature = temperature
        self.rng = rng or random.Random()

    def pick(self, pool, seq, hints: Hints | None, workers: list | None = None):
        """The worker of ``pool`` (``workers``: a subset, e.g. its decode workers) for ``seq``."""
        cands = [w for w in (pool.serving if workers is None else workers) if not w.draining]
        if len(cands) == 1:
            return cands[0]
        strategy = (hints.strategy if hints and hints.strategy else self.strategy)
        if strategy == "session":
            session = hints.session if hints else None
            if session is not None:
                session = hash(session)  # the key, not the client's (unbounded) string, is kept
                w = pool.sessions.get(session)
                if w is not None and w in cands:
                    pool.sessions.move_to_end(session)
                    return w
                w = self.kv(cands, seq, hints)
                pool.sessions[session] = w
                if len(pool.sessions) > MAX_SESSIONS:
                    pool.sessions.popitem(last=False)
                return w
            strategy = "kv"
        if strategy == "round_robin":
            pool.rr += 1
            return cands[pool.rr % len(cands)]
        if strategy == "random":
            return self.rng.choice(cands)
        if strategy == "least_loaded":
            best = min(w.running + w.waiting for w in cands)
            cands = [w for w in cands if w.running + w.waiting == best]
            best = min(w.kv_blocks_active for w in cands)
            return self.rng.choice([w for w in cands if w.kv_blocks_active == best])
        return self.kv(cands, seq, hints)

    def kv(self, cands: list, seq, hints: Hints | None):
        free = [w for w in cands if w.running + w.waiting < w.max_num_seqs]
        cands = free or cands
        weight = hints.overlap_weight if hints and hints.overlap_weight is not None else self.overlap_weight
        temp = hints.temperature if hints and hints.temperature is not None else self.temperature
        hashes = seq.hashes
        costs = []
        for w in cands:
            overlap = 0
            if hashes and w.kv.caching:
                overlap = w.kv.tree.match(hashes, (seq.prompt - 1) // w.block_size)
            costs.append(cost(w, seq.prompt, overlap, weight))
        if temp > 0:
            return cands[softmax_pick(costs, temp, self.rng)]
        lo = min(costs)
        tied = [w for w, c in zip(cands, costs) if c == lo]
        if len(tied) > 1:
            small = min(len(w.kv.tree) for w in tied)
            tied = [w for w in tied if len(w.kv.tree) == small]
        return tied[0] if len(tied) == 1 else self.rng.choice(tied)
