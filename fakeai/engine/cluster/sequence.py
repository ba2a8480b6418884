"""One request inside the cluster: where it is, what it holds, and when its tokens are due.

A request's two timing components are each either *pinned* or *modelled*:

* pinned TTFT (``--ttft``, or a model whose profile has no prefill cost): the first token
  is due at ``start + ttft``, ``start`` being its arrival if it was admitted at once, else
  its admission;
* pinned ITL (``--itl``, or a profile with no decode cost): token ``i`` is due at
  ``first + i x itl``;
* modelled: the worker's step loop decides (prefill chunks, then one token per step).

States: WAITING (in a worker's queue), PREFILL (admitted, prefill computed by the step
loop), JOIN (admitted with a pinned TTFT, joins the loop's decode batch at its first
token), DECODE (decoded by the step loop), PINNED (tokens on the pinned schedule),
MOVING (between a prefill and a decode worker), DONE (every token produced).
"""

from __future__ import annotations

import asyncio

from .. import schedule
from .radix import Block

WAITING, PREFILL, JOIN, DECODE, PINNED, MOVING, DONE = range(7)
STATE_NAMES = ("waiting", "prefill", "join", "decode", "pinned", "moving", "done")
LOOP_STATES = frozenset({PREFILL, JOIN, DECODE})  # states the worker's step loop drives


def blocks_for(prompt: int, generated: int, n: int, block_size: int) -> int:
    """KV blocks a request holds with ``generated`` tokens decoded in each of ``n`` choices
    (the prompt's blocks are shared by the choices)."""
    pb = -(-prompt // block_size)
    if generated <= 0:
        return pb
    return pb + n * (-(-(prompt + generated) // block_size) - pb)


class Seq:
    __slots__ = (
        "gen", "model", "endpoint", "stream", "prompt", "total", "n", "ids", "hashes",
        "arrival", "ttft", "itl", "state", "worker", "scheduled", "first", "emitted",
        "prefill_left", "cached", "nodes", "private", "done_at", "waiter", "remote_prefill",
        "committed", "admits", "transferred",
    )

    def __init__(self, gen, endpoint: str, stream: bool, arrival: float,
                 ttft: float | None, itl: float | None) -> None:
        self.gen = gen
        self.model: str = gen.model.id
        self.endpoint = endpoint
        self.stream = stream
        self.prompt: int = gen.prompt_tokens
        self.total: int = gen.steps  # decode steps (tokens per choice)
        self.n: int = max(1, len(gen.choices))
        self.ids: list[int] | None = gen.prompt_ids
        self.hashes: list[int] | None = None  # sequence hashes of the prompt's full blocks
        self.arrival = arrival
        self.ttft = ttft  # pinned TTFT (s) or None
        self.itl = itl  # pinned ITL (s) or None
        self.state = WAITING
        self.worker = None  # the Worker holding it
        self.scheduled: float | None = None  # when it left the waiting queue (first time)
        self.first: float | None = None  # when its first token is due
        self.emitted = 0  # tokens per choice produced (step-loop decode)
        self.prefill_left = 0  # prompt tokens still to compute
        self.cached = 0  # prompt tokens found in the prefix cache
        self.nodes: list[Block] = []  # cached blocks it pins
        self.private = 0  # blocks it holds outside the cache
        self.done_at: float | None = None
        self.waiter: asyncio.Future | None = None
        self.remote_prefill = False  # vLLM P/D: the prompt's KV comes from another engine
        self.committed = False  # the prompt's blocks are in the cache
        self.admits = 0  # times admitted (> 1 after a preemption)
        self.transferred = False  # its KV came from a prefill worker (disaggregation)

    # -- timing ---------------------------------------------------------------------------
    def due(self, now: float) -> int:
        """Tokens per choice due at ``now``."""
        first = self.first
        if first is None or now < first or not self.total:
            return 0
        if self.itl is not None:
            return schedule.due_count(first, self.itl, now, self.total)
        return min(max(self.emitted, 1), self.total)

    def wake_time(self, sent: int) -> float | None:
        """When the token after ``sent`` falls due, or None if the step loop decides."""
        first = self.first
        if first is None:
            return None
        if self.itl is not None:
            return schedule.deadline(first, self.itl, sent)
        return first if sent == 0 else None

    def end_time(self) -> float | None:
        """When the last token is due, once known."""
        if self.done_at is not None:
            return self.done_at
        first = self.first
        if first is None:
            return None
        if not self.total:
            return first
        if self.itl is not None:
            return schedule.finish_time(first, self.itl, self.total)
        return None

    # -- waking ---------------------------------------------------------------------------
    def progress(self) -> asyncio.Future:
        """A future the worker resolves when this sequence moves on."""
        fut = self.waiter
        if fut is None or fut.done():
            fut = self.waiter = asyncio.get_running_loop().create_future()
        return fut

    def wake(self) -> None:
        fut = self.waiter
        if fut is not None:
            self.waiter = None
            if not fut.done():
                fut.set_result(None)

    @property
    def blocks(self) -> int:
        return len(self.nodes) + self.private

    @property
    def context(self) -> int:
        """Tokens in its KV cache: the prompt and what it has decoded."""
        return self.prompt + self.emitted
