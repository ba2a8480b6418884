"""Cheap accumulators for counters and histograms fed from request records.

Observing must cost next to nothing on the serving path, so these are plain
Python numbers and lists (one event loop, no locks) rather than
prometheus_client's locked value objects; they become metric families only
when scraped (``families.py``). A histogram also takes a weighted
observation (``observe_n``): one request's N identical inter-token gaps are
one bisect, not N.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence


class Hist:
    """One histogram child: per-bucket counts (not cumulative; the last slot is +Inf) and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_n(self, value: float, n: int) -> None:
        """``n`` observations of the same ``value``."""
        self.counts[bisect_left(self.bounds, value)] += n
        self.sum += value * n

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs as the exposition format writes them."""
        out, total = [], 0
        for bound, c in zip(self.bounds, self.counts):
            total += c
            out.append((le_text(bound), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


class Family:
    """A named series family whose children are keyed by label values (in ``labelnames`` order)."""

    __slots__ = ("bounds", "children", "doc", "kind", "labelnames", "name")

    def __init__(self, name: str, doc: str, kind: str, labelnames: Sequence[str],
                 bounds: Sequence[float] = ()) -> None:
        self.name, self.doc, self.kind = name, doc, kind  # kind: "counter" or "histogram"
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(bounds)
        self.children: dict[tuple[str, ...], Hist | list[float]] = {}

    def child(self, values: tuple[str, ...], bounds: Sequence[float] | None = None):
        """The child for ``values``: a ``Hist`` (with the family's bounds unless ``bounds`` are
        given), or a one-element list holding a counter's value."""
        c = self.children.get(values)
        if c is None:
            c = Hist(bounds or self.bounds) if self.kind == "histogram" else [0.0]
            self.children[values] = c
        return c


def le_text(bound: float) -> str:
    """A bucket bound as prometheus_client writes it (``0.3``, ``1.0``, ``+Inf``)."""
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))


def buckets_1_2_5(max_value: int) -> list[float]:
    """vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to ``max_value``."""
    out: list[float] = []
    exponent = 0
    while True:
        for m in (1, 2, 5):
            value = m * 10 ** exponent
            if value > max_value:
                return out
            out.append(float(value))
        exponent += 1


def log_buckets(low: float, high: float, count: int) -> list[float]:
    """Dynamo's frontend buckets: 0, then ``count - 1`` log-spaced values from ``low`` to ``high``
    rounded to two significant figures, duplicates dropped."""
    out = [0.0]
    for i in range(1, count):
        value = math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / (count - 1))
        value = _round_sig(value, 2)
        if value != out[-1]:
            out.append(value)
    return out


def _round_sig(value: float, digits: int) -> float:
    magnitude = math.floor(math.log10(abs(value)))
    scale = 10.0 ** (digits - 1 - magnitude)
    return round(value * scale) / scale
