"""Bounded streaming quantiles: a DDSketch-style log-bucket histogram, and a sliding window of them.

A value ``v > 0`` falls in bucket ``ceil(log(v) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``;
a bucket's representative value is within a relative error ``a`` of every value in it, so a
quantile read from the buckets is within ``a`` (1 %) of a value of that rank. Values at or below
``ZERO`` share one bucket (reported as 0). Memory is one dict entry per occupied bucket: about
230 buckets per decade of range, so latencies from a microsecond to an hour need at most ~2,200,
whatever the number of observations; observing is one ``log`` and one dict update.

Callers that add one value to several sketches compute ``index(v)`` once (``Sketch.add_at``).
"""

from __future__ import annotations

import math

ACCURACY = 0.01
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
ZERO = 1e-9
ZERO_INDEX = -(1 << 30)  # the bucket of values <= ZERO
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))
_log = math.log
_ceil = math.ceil


def index(v: float) -> int:
    """The bucket of ``v`` (negative values count as 0)."""
    return _ceil(_log(v) / _LOG_GAMMA) if v > ZERO else ZERO_INDEX


def value_of(i: int) -> float:
    """A bucket's representative value (the point of least relative error)."""
    if i == ZERO_INDEX:
        return 0.0
    return 2.0 * GAMMA ** i / (GAMMA + 1.0)


class Sketch:
    __slots__ = ("buckets", "count", "max", "min", "sum")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, v: float) -> None:
        self.add_at(index(v), v)

    def add_at(self, i: int, v: float, n: int = 1) -> None:
        """Add ``n`` observations of ``v``, whose bucket ``i = index(v)`` the caller already knows."""
        b = self.buckets
        b[i] = b.get(i, 0) + n
        self.count += n
        self.sum += v * n
        if v > self.max:
            self.max = v
        if v < self.min:
            self.min = v

    def merge(self, other: Sketch) -> None:
        b = self.buckets
        for i, n in other.buckets.items():
            b[i] = b.get(i, 0) + n
        self.count += other.count
        self.sum += other.sum
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)

    def quantile(self, q: float) -> float | None:
        """The value of rank ``q`` (0-1), or None while empty."""
        return self.quantiles((q,))[0] if self.count else None

    def quantiles(self, qs) -> list[float | None]:
        """Values at each of the ascending ranks ``qs`` in one pass over the buckets."""
        if not self.count:
            return [None] * len(qs)
        ranks = [q * (self.count - 1) for q in qs]
        out: list[float] = []
        seen = 0
        lo, hi = max(self.min, 0.0), self.max
        k = 0
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            while k < len(ranks) and seen > ranks[k]:
                out.append(min(max(value_of(i), lo), hi))
                k += 1
            if k == len(ranks):
                break
        while len(out) < len(qs):
            out.append(hi)
        return out

    def summary(self) -> dict:
        """``{"count", "mean", "p50", "p90", "p95", "p99", "max"}`` (None members while empty)."""
        if not self.count:
            return {"count": 0, "mean": None, **{name: None for name, _ in QUANTILES}, "max": None}
        values = self.quantiles([q for _, q in QUANTILES])
        out = {"count": self.count, "mean": self.sum / self.count}
        out.update((name, v) for (name, _), v in zip(QUANTILES, values))
        out["max"] = self.max
        return out


class Dists:
    """The four latency distributions of one scope (TTFT, ITL, e2e, queue), added in one call."""

    __slots__ = ("e2e", "itl", "queue", "ttft")

    def __init__(self) -> None:
        self.ttft, self.itl, self.e2e, self.queue = Sketch(), Sketch(), Sketch(), Sketch()

    def add(self, i_ttft: int, ttft: float, i_itl: int, itl: float, gaps: int, i_e2e: int, e2e: float,
            i_queue: int, queue: float) -> None:
        """One request: its TTFT, ``gaps`` inter-token gaps of ``itl``, e2e and queue time (the
        buckets precomputed). Inlined ``Sketch.add_at``: this runs for every request and scope."""
        for sk, i, v in ((self.ttft, i_ttft, ttft), (self.e2e, i_e2e, e2e), (self.queue, i_queue, queue)):
            b = sk.buckets
            b[i] = b.get(i, 0) + 1
            sk.count += 1
            sk.sum += v
            if v > sk.max:
                sk.max = v
            if v < sk.min:
                sk.min = v
        if gaps > 0:
            self.itl.add_at(i_itl, itl, gaps)

    def merge(self, other: Dists) -> None:
        for name in self.__slots__:
            getattr(self, name).merge(getattr(other, name))

    def summary(self) -> dict:
        return {"ttft": self.ttft.summary(), "itl": self.itl.summary(), "e2e": self.e2e.summary(),
                "queue": self.queue.summary()}


class Window:
    """Latency distributions of the last ``slices x width`` seconds: per slice of time, a request
    count and a ``Dists``; the oldest slice drops as time moves on, and the slices are merged when
    read."""

    __slots__ = ("_cur", "_cur_slot", "_slices", "slices", "width")

    def __init__(self, slices: int = 6, width: float = 10.0) -> None:
        self.slices, self.width = slices, width
        self._slices: list[tuple[int, list]] = []  # (slot, [count, Dists])
        self._cur: list | None = None
        self._cur_slot = -1

    @property
    def seconds(self) -> float:
        return self.slices * self.width

    def current(self, now: float) -> list:
        """The live slice ``[count, Dists]`` for time ``now``."""
        slot = int(now // self.width)
        if slot != self._cur_slot:
            keep = [(s, cell) for s, cell in self._slices if s > slot - self.slices]
            self._cur = [0, Dists()]
            keep.append((slot, self._cur))
            self._slices = keep
            self._cur_slot = slot
        return self._cur

    def merge(self, other: Window) -> None:
        """Add ``other``'s slices to this one's (slice by slice of the same time)."""
        mine = dict(self._slices)
        for s, cell in other._slices:
            m = mine.get(s)
            if m is None:
                m = mine[s] = [0, Dists()]
                self._slices.append((s, m))
            m[0] += cell[0]
            m[1].merge(cell[1])

    def merged(self, now: float) -> tuple[int, Dists]:
        """(count, distributions) over the window ending at ``now``."""
        count, out = 0, Dists()
        floor = int(now // self.width) - self.slices
        for s, cell in self._slices:
            if s > floor:
                count += cell[0]
                out.merge(cell[1])
        return count, out
