"""What the simulated cluster tells its observers.

The engine publishes; telemetry (Prometheus, Dynamo, DCGM, usage) subscribes.
Observers only read: nothing they do feeds back into scheduling or timing.
Publishing is a plain loop over callables, so an event costs a few hundred
nanoseconds per subscriber on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class RequestRecord:
    """One finished (or cancelled) request, with its timeline on the engine clock (seconds)."""

    model: str  # the served model id (catalog id)
    worker: int  # index of the worker that ran it
    endpoint: str  # "chat", "completions", "embeddings", "responses", ... (set by the caller)
    arrival: float  # when it reached the server
    scheduled: float  # when it left the waiting queue (= arrival if it never waited)
    first_token: float  # when its first token was due (TTFT = first_token - arrival)
    finished: float  # when its last token was due / it was cancelled
    prompt_tokens: int
    cached_tokens: int  # prompt tokens served from the prefix cache
    completion_tokens: int
    max_tokens: int | None  # what the request asked for (None: not given)
    n: int
    finish_reason: str  # "stop", "length", "tool_calls", "content_filter", "abort" (cancelled)
    stream: bool

    @property
    def queue_time(self) -> float:
        return self.scheduled - self.arrival

    @property
    def ttft(self) -> float:
        return self.first_token - self.arrival

    @property
    def e2e(self) -> float:
        return self.finished - self.arrival

    @property
    def prefill_time(self) -> float:
        return self.first_token - self.scheduled

    @property
    def decode_time(self) -> float:
        return self.finished - self.first_token


@dataclass(slots=True)
class KVEvent:
    """A change to one worker's prefix cache, in vLLM's KV-event terms.

    ``kind`` is "stored" (``block_hashes`` chained from ``parent_hash``, with their
    ``token_ids``), "removed" (``block_hashes``) or "cleared" (all blocks).
    Hashes are Dynamo's sequence hashes (XXH3-64, seed 1337, chained).
    """

    worker: int
    model: str
    kind: str
    block_hashes: list[int]
    parent_hash: int | None = None
    token_ids: list[int] | None = None
    block_size: int = 16


Listener = Callable[[RequestRecord], None]
KVListener = Callable[[KVEvent], None]


class EventBus:
    """Synchronous fan-out of request records to subscribers (telemetry, usage)."""

    __slots__ = ("_finished", "_kv")

    def __init__(self) -> None:
        self._finished: list[Listener] = []
        self._kv: list[KVListener] = []

    def on_finished(self, listener: Listener) -> None:
        self._finished.append(listener)

    def on_kv(self, listener: KVListener) -> None:
        self._kv.append(listener)

    @property
    def wants_kv(self) -> bool:
        """Whether anyone follows cache changes (building KV events is skipped otherwise)."""
        return bool(self._kv)

    def finished(self, record: RequestRecord) -> None:
        for listener in self._finished:
            listener(record)

    def kv(self, event: KVEvent) -> None:
        for listener in self._kv:
            listener(event)
