"""The latency model of one model on one worker.

    TTFT = prefill_overhead + prefill_per_token x uncached_prompt_tokens   (+ queueing)
    ITL  = itl                                                            (per later token)

``--ttft`` replaces the whole TTFT formula with a constant; ``--itl`` replaces
the ITL. Jitter multiplies each by a clamped noise factor (normal or
lognormal with the given relative standard deviation), 0 by default when a
fixed TTFT/ITL is given. See docs/timing.md.

A component that is not fixed is *modelled*: the worker's step loop computes it
from the batch with ``StepModel`` (docs/cluster.md).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timing:
    ttft: float  # seconds, queueing excluded
    itl: float  # seconds


@dataclass(frozen=True, slots=True)
class LatencyModel:
    prefill_overhead_ms: float
    prefill_ms_per_token: float
    itl_ms: float
    jitter: float = 0.0
    jitter_dist: str = "normal"
    fixed_ttft: bool = False  # TTFT is a constant (given, or a profile without prefill cost)
    fixed_itl: bool = False  # ITL is a constant (given, or a profile without decode cost)

    @classmethod
    def build(cls, profile, ttft_ms: float | None, itl_ms: float | None,
              jitter: float | None, jitter_dist: str) -> "LatencyModel":
        """Combine a catalog profile with the global overrides."""
        fixed = ttft_ms is not None or itl_ms is not None
        if jitter is None:
            jitter = 0.0 if fixed else profile.jitter
            jitter_dist = jitter_dist if fixed else profile.jitter_dist
        no_prefill = profile.prefill_overhead_ms == 0 and profile.prefill_ms_per_token == 0
        return cls(
            prefill_overhead_ms=profile.prefill_overhead_ms if ttft_ms is None else ttft_ms,
            prefill_ms_per_token=profile.prefill_ms_per_token if ttft_ms is None else 0.0,
            itl_ms=profile.itl_ms if itl_ms is None else itl_ms,
            jitter=jitter,
            jitter_dist=jitter_dist,
            fixed_ttft=ttft_ms is not None or no_prefill,
            fixed_itl=itl_ms is not None or profile.itl_ms == 0,
        )

    def ttft_s(self, uncached_prompt_tokens: int, rng: random.Random | None = None) -> float:
        base = self.prefill_overhead_ms + self.prefill_ms_per_token * max(uncached_prompt_tokens, 0)
        return self._noisy(base, rng) / 1000.0

    def itl_s(self, rng: random.Random | None = None) -> float:
        return self._noisy(self.itl_ms, rng) / 1000.0

    def timing(self, uncached_prompt_tokens: int, rng: random.Random | None = None) -> Timing:
        return Timing(self.ttft_s(uncached_prompt_tokens, rng), self.itl_s(rng))

    def _noisy(self, value: float, rng: random.Random | None) -> float:
        if self.jitter <= 0 or value <= 0 or rng is None:
            return value
        return value * noise_factor(self.jitter, self.jitter_dist, rng)


def noise_factor(rel_std: float, dist: str, rng: random.Random) -> float:
    """A multiplicative factor with mean ~1 and relative stddev ``rel_std``, clamped to [0.25, 4]."""
    if dist == "lognormal":
        sigma = math.sqrt(math.log1p(rel_std * rel_std))
        f = rng.lognormvariate(-sigma * sigma / 2.0, sigma)
    else:
        f = rng.gauss(1.0, rel_std)
    return min(max(f, 0.25), 4.0)


@dataclass(frozen=True, slots=True)
class StepModel:
    """How long one engine step of a worker takes, from what is in the batch.

        step = decode(B, C) + prefill_ms_per_token x prefill tokens in the step
        decode(B, C) = itl x max(W + K x C, F x B / S) / W      (0 when B = 0)

    with B sequences decoding and C tokens in their KV caches, W the weight bytes and K the
    KV bytes per token of one GPU (both read from HBM every step), F the FLOPs per token
    (2 x active parameters / TP) and S the GPU's FLOP/s. A lone short sequence decodes at
    the catalog's ``itl``; longer contexts and larger batches slow every step (memory-bound
    until F x B / S, the compute time, dominates). ``itl`` and ``prefill_ms_per_token``
    are the catalog's (for an H100) scaled by the GPU's bandwidth and FLOP/s.
    """

    itl_s: float
    prefill_s_per_token: float
    weights_bytes: float
    token_bytes: float
    compute_ratio: float  # (F / S) / (W / bandwidth): compute time per sequence over the weight read

    def decode_s(self, seqs: int, context_tokens: int) -> float:
        if seqs <= 0:
            return 0.0
        memory = 1.0 + self.token_bytes * context_tokens / self.weights_bytes
        return self.itl_s * max(memory, self.compute_ratio * seqs)

    def step_s(self, seqs: int, context_tokens: int, prefill_tokens: int) -> float:
        return self.decode_s(seqs, context_tokens) + self.prefill_s_per_token * prefill_tokens
