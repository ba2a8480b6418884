"""Which of the server's processes this is (``--workers N``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProcessSlot:
    """Process ``index`` of ``count`` serving one socket; ``run_dir`` is the directory they
    share for the run (metrics snapshots, shared counters), None for a single process."""

    index: int = 0
    count: int = 1
    run_dir: str | None = None

    @property
    def single(self) -> bool:
        return self.count == 1


SINGLE = ProcessSlot()
