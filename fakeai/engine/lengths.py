"""How long a completion wants to be when the model stops on its own."""

from __future__ import annotations

import random


def natural_length(dist: str, mean: int, spread: int, rng: random.Random) -> int | None:
    """Tokens the model would emit before its end-of-sequence; None means 'until max_tokens'."""
    if dist == "max":
        return None
    if dist == "fixed" or spread == 0:
        return max(1, mean)
    if dist == "uniform":
        return max(1, rng.randint(mean - spread, mean + spread))
    return max(1, int(round(rng.gauss(mean, spread))))
