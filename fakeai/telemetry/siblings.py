"""Metrics across the server's processes (``--workers N``): one scrape sees the sum.

Every series is read from a process's own simulated cluster at scrape time, which
prometheus_client's multiprocess mode (values written to shared memory as they are
counted) cannot express. Instead each process writes the exposition text of each
of its endpoints (``/metrics``, ``/dynamo/metrics``, ``/dcgm/metrics``) to the run
directory every ``interval`` seconds, and a scrape of any process merges its own
live text with the other processes' latest, with multiprocess mode's rules:

* samples with different labels are listed side by side: the processes simulate
  different workers and GPUs (``engine``, ``gpu``, ``UUID`` differ), so their
  series never collide;
* samples with the same name and labels (the frontends' per-model counters, token
  and latency histograms) are summed: counters, histogram buckets, sums and counts,
  and gauges (``livesum``);
* ``*_info`` series (``vllm:cache_config_info``) and limits (``process_max_fds``)
  take the maximum, ``*_created`` and ``process_start_time_seconds`` the minimum;
* a process whose text is older than ``STALE_INTERVALS`` intervals is gone (its
  slot is being restarted) and is left out until it writes again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from ..config.process import ProcessSlot
from ..periodic import Periodic

STALE_INTERVALS = 5
_MIN_SUFFIXES = ("_created", "_start_time_seconds")
_MAX_NAMES = frozenset({"process_max_fds", "process_virtual_memory_max_bytes"})


class Siblings:
    def __init__(self, slot: ProcessSlot, renderers: dict[str, Callable[[], Awaitable[bytes]]],
                 interval: float = 1.0) -> None:
        self.slot = slot
        self.renderers = renderers
        self.interval = interval
        self.dir = os.path.join(slot.run_dir, "metrics")
        os.makedirs(self.dir, exist_ok=True)
        self._rounds = Periodic(interval, self.publish, "publishing this process's metrics")

    def _path(self, kind: str, index: int) -> str:
        return os.path.join(self.dir, f"{kind}-{index}.prom")

    async def start(self) -> None:
        await self.publish()
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def publish(self) -> None:
        for kind, render in self.renderers.items():
            text = await render()
            path = self._path(kind, self.slot.index)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(text)
            os.replace(tmp, path)

    def others(self, kind: str) -> list[bytes]:
        """The other live processes' latest text of ``kind``."""
        out = []
        oldest = time.time() - STALE_INTERVALS * self.interval
        for index in range(self.slot.count):
            if index == self.slot.index:
                continue
            path = self._path(kind, index)
            try:
                if os.stat(path).st_mtime < oldest:
                    continue
                with open(path, "rb") as f:
                    out.append(f.read())
            except FileNotFoundError:
                continue
        return out

    async def merged(self, kind: str, own: bytes) -> bytes:
        others = self.others(kind)
        if not others:
            return own
        return await asyncio.get_running_loop().run_in_executor(None, merge, [own, *others])


def merge(texts: list[bytes]) -> bytes:
    """One exposition text from several, by the rules above."""
    from prometheus_client import generate_latest
    from prometheus_client.metrics_core import Metric
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.samples import Sample

    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple, list]] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text.decode("utf-8")):
            into = families.get(fam.name)
            if into is None:
                into = families[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
                values[fam.name] = {}
            rows = values[fam.name]
            highest = fam.type == "info" or fam.name.endswith("_info") or fam.name in _MAX_NAMES
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                row = rows.get(key)
                if row is None:
                    rows[key] = [s.name, s.labels, s.value]
                elif s.name.endswith(_MIN_SUFFIXES):
                    row[2] = min(row[2], s.value)
                elif highest:
                    row[2] = max(row[2], s.value)
                else:
                    row[2] += s.value
    from .families import _One  # one family as a collector

    out = []
    for name, fam in families.items():
        fam.samples = [Sample(n, labels, v) for n, labels, v in values[name].values()]
        out.append(generate_latest(_One(fam)))
    return b"".join(out)
