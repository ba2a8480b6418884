"""The latency model of one model on one worker.

    TTFT = prefill_overhead + prefill_per_token x uncached_prompt_tokens   (+ queueing)
    ITL  = itl                                                            (per later token)

``--ttft`` replaces the whole TTFT formula with a constant; ``--itl`` replaces
the ITL. Jitter multiplies each by a clamped noise factor (normal or
lognormal with the given relative standard deviation), 0 by default when a
fixed TTFT/ITL is given. See docs/timing.md.
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

    @classmethod
    def build(cls, profile, ttft_ms: float | None, itl_ms: float | None,
              jitter: float | None, jitter_dist: str) -> "LatencyModel":
        """Combine a catalog profile with the global overrides."""
        fixed = ttft_ms is not None or itl_ms is not None
        if jitter is None:
            jitter = 0.0 if fixed else profile.jitter
            jitter_dist = jitter_dist if fixed else profile.jitter_dist
        return cls(
            prefill_overhead_ms=profile.prefill_overhead_ms if ttft_ms is None else ttft_ms,
            prefill_ms_per_token=profile.prefill_ms_per_token if ttft_ms is None else 0.0,
            itl_ms=profile.itl_ms if itl_ms is None else itl_ms,
            jitter=jitter,
            jitter_dist=jitter_dist,
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
