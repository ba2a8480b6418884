"""Pure schedule maths: absolute token deadlines and coalescing of late tokens.

A stream that starts at ``first`` (the deadline of its first token) emits token
``i`` at ``first + i * itl``. Deadlines are absolute, so a late wake-up never
shifts later tokens; a stream that has fallen behind sends every token already
due in one write.
"""

from __future__ import annotations

import math


def deadline(first: float, itl: float, index: int) -> float:
    """When token ``index`` (0-based) is due."""
    return first + index * itl


def due_count(first: float, itl: float, now: float, total: int) -> int:
    """How many of ``total`` tokens are due at ``now`` (0 before the first)."""
    if now < first:
        return 0
    if itl <= 0:
        return total
    return min(total, int((now - first) / itl + 1e-9) + 1)


def finish_time(first: float, itl: float, total: int) -> float:
    """When the last of ``total`` tokens is due (``first`` for 0 or 1 token)."""
    return first + max(total - 1, 0) * itl


def slot_of(when: float, resolution: float) -> int:
    """The timer slot that fires at or after ``when``."""
    return math.ceil(when / resolution - 1e-9)
