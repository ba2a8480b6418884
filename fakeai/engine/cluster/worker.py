"""A simulated worker: a tensor-parallel group of GPUs serving one model.

It owns a KV block pool with its prefix cache (``kv``) and a continuous-batching
scheduler (``sched``). Requests whose timing is modelled are driven by the worker's step
loop, an asyncio task that exists only while such requests are present: it plans a step,
sleeps on the shared ``Ticker`` until the step's end (absolute times: the next step
starts where this one ended, so lateness never accumulates), applies it and wakes the
streams that moved. Requests with pinned timing never wait on the loop.

The attributes and properties are ``fakeai.engine.state.WorkerState``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..capacity import Deployment
from ..clock import Ticker
from ..events import EventBus
from ..latency import StepModel, noise_factor
from .hardware import GpuSpec
from .kv import KVCache
from .scheduler import BatchScheduler, Step
from .sequence import DECODE, LOOP_STATES, PINNED, Seq

RESYNC_S = 0.1  # a loop this far behind its schedule restarts from now instead of catching up
LAG_S = 0.002  # a loop this far behind yields to the streams between steps
_BUSES = ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB")  # an HGX board's PCI buses


@dataclass(slots=True)
class Gpu:
    """One GPU (``fakeai.engine.state.GpuState``)."""

    index: int
    uuid: str
    pci_bus_id: str
    spec: GpuSpec
    worker: int

    @classmethod
    def make(cls, hostname: str, index: int, spec: GpuSpec, worker: int) -> Gpu:
        h = hashlib.blake2b(f"{hostname}/{index}".encode(), digest_size=16).hexdigest()
        uuid = f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        bus = f"{index // len(_BUSES):08X}:{_BUSES[index % len(_BUSES)]}:00.0"
        return cls(index, uuid, bus, spec, worker)


class Worker:
    def __init__(self, index: int, model: str, role: str, deployment: Deployment, gpus: list[Gpu],
                 step_model: StepModel, *, max_num_seqs: int, max_batched_tokens: int,
                 caching: bool, jitter: float, jitter_dist: str, ticker: Ticker, events: EventBus,
                 on_handoff: Callable[[Seq, float], None]) -> None:
        self.index = index
        self.model = model
        self.role = role  # "both", "prefill" or "decode"
        self.tp = deployment.tp
        self.gpus = gpus
        self.deployment = deployment
        self.block_size = deployment.block_size
        self.kv_blocks_total = deployment.kv_blocks
        self.weights_bytes = deployment.weights_bytes
        self.block_bytes = deployment.block_bytes
        self.step_model = step_model
        self.kv = KVCache(deployment.kv_blocks, deployment.block_size, caching and role != "decode",
                          events, index, model)
        self.sched = BatchScheduler(self.kv, max_num_seqs, max_batched_tokens, role)
        self.draining = False  # being removed: the router sends it nothing new
        self.current: Step | None = None  # the step in progress
        self.step_period = step_model.itl_s  # what a "step" of pinned decoding counts as
        self._jitter = jitter
        self._jitter_dist = jitter_dist
        self._rng = random.Random()
        self._ticker = ticker
        self._on_handoff = on_handoff
        self._loop_task: asyncio.Task | None = None
        self._nudge: asyncio.Future | None = None

    # -- WorkerState --------------------------------------------------------------------------
    @property
    def running(self) -> int:
        return len(self.sched.running)

    @property
    def waiting(self) -> int:
        return len(self.sched.waiting)

    @property
    def max_num_seqs(self) -> int:
        return self.sched.max_num_seqs

    @property
    def kv_blocks_used(self) -> int:
        return self.kv.used

    @property
    def kv_blocks_active(self) -> int:
        """Blocks held by running requests (the rest of ``kv_blocks_used`` is idle cache)."""
        return self.kv.private + self.kv.tree.pinned

    @property
    def busy_seconds(self) -> float:
        return self.sched.busy_seconds(self._now())

    @property
    def steps(self) -> int:
        """Executed steps, plus the decode steps of pinned-ITL time (busy outside the loop)."""
        s = self.sched
        pinned = max(self.busy_seconds - s.loop_busy, 0.0)
        return s.steps + (int(pinned / self.step_period) if self.step_period > 0 else 0)

    @property
    def prompt_tokens_total(self) -> int:
        return self.sched.prompt_tokens_total

    @property
    def generation_tokens_total(self) -> int:
        s = self.sched
        return s.generation_tokens + (s.pinned_tokens(self._now()) if s.running else 0)

    @property
    def prefix_query_tokens(self) -> int:
        return self.sched.prefix_query_tokens

    @property
    def prefix_hit_tokens(self) -> int:
        return self.sched.prefix_hit_tokens

    @property
    def preemptions(self) -> int:
        return self.sched.preemptions

    @property
    def evicted_blocks(self) -> int:
        return self.kv.evicted

    @property
    def requests_finished(self) -> int:
        return self.sched.requests_finished

    def _now(self) -> float:
        try:
            return self._ticker.time()
        except RuntimeError:  # read outside the event loop (no request has run yet)
            return 0.0

    @property
    def idle(self) -> bool:
        return not self.sched.running and not self.sched.waiting

    # -- requests -----------------------------------------------------------------------------
    def submit(self, seq: Seq, now: float) -> None:
        seq.worker = self
        if self.sched.submit(seq, now):
            self._admitted([seq])

    def receive(self, seq: Seq, now: float) -> None:
        """A sequence whose prompt KV arrived from a prefill worker."""
        seq.worker = self
        if seq.itl is not None:
            self.sched.force(seq, now)  # its tokens are due on a fixed schedule: no queueing
            self._admitted([seq])
        elif self.sched.submit(seq, now):
            self._admitted([seq])

    def finish(self, seq: Seq, now: float, tokens: int) -> None:
        self.sched.finish(seq, now, tokens)
        if self.sched.waiting:
            self._admitted(self.sched.admit(now))

    def release(self, seq: Seq, now: float) -> None:
        """Hand ``seq`` over to a decode worker: it leaves this one, its prompt stays cached."""
        sched = self.sched
        if seq in sched.running:
            sched._remove_running(seq, now)
            self.kv.release(seq)
        self._admitted(sched.admit(now))

    def set_max_num_seqs(self, n: int) -> None:
        self.sched.max_num_seqs = n
        self._admitted(self.sched.admit(self._now()))

    def _admitted(self, seqs: list[Seq]) -> None:
        """Wake what was admitted; start the step loop if any of it needs one."""
        loop = False
        for seq in seqs:
            seq.wake()
            if seq.state in LOOP_STATES:
                loop = True
            if self.role == "prefill" and seq.ttft is not None and seq.first is not None:
                # pinned TTFT: the prefill is done when the first token is due
                asyncio.get_running_loop().call_at(seq.first, self._handoff_pinned, seq)
        if loop:
            self._kick()

    def _handoff_pinned(self, seq: Seq) -> None:
        if seq.worker is self and seq.state == PINNED:
            self._on_handoff(seq, seq.first)

    # -- the step loop ------------------------------------------------------------------------
    def _kick(self) -> None:
        nudge = self._nudge
        if nudge is not None and not nudge.done():
            nudge.set_result(None)
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        ticker, sched, model = self._ticker, self.sched, self.step_model
        t = ticker.time()
        try:
            while True:
                step = sched.plan(t)
                if step is None:
                    join = sched.next_join()
                    if join is None:
                        return
                    await self._idle_until(join)
                    t = max(t, min(join, ticker.time()))
                    continue
                d = model.step_s(step.seqs, step.context, step.prefill_tokens)
                if self._jitter > 0:
                    d *= noise_factor(self._jitter, self._jitter_dist, self._rng)
                step.duration = d
                self.current = step
                end = t + d
                await ticker.sleep_until(end)
                for seq in sched.apply(step, end):
                    if seq.stream or seq.state != DECODE or seq.emitted <= 1:
                        seq.wake()
                if sched.outbox:
                    moving, sched.outbox = sched.outbox, []
                    for seq in moving:
                        self._on_handoff(seq, end)
                self._admitted(sched.admit(end))
                now = ticker.time()
                if now - end > LAG_S:
                    await asyncio.sleep(0)  # behind schedule: let the streams write before catching up
                t = end if now - end < RESYNC_S else now
        finally:
            self._loop_task = None
            self.current = None

    async def _idle_until(self, when: float) -> None:
        """Sleep until ``when`` or until a new request arrives (``_kick``)."""
        loop = asyncio.get_running_loop()
        self._nudge = nudge = loop.create_future()
        handle = loop.call_at(when, lambda: nudge.done() or nudge.set_result(None))
        try:
            await nudge
        finally:
            handle.cancel()
            self._nudge = None

    def stop(self) -> None:
        task = self._loop_task
        if task is not None:
            task.cancel()
