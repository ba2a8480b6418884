"""The simulated cluster: a pool of workers per model, a router in front, one record per request.

A model's pool comes up on its first request (the default chat model's at start-up):
``workers_per_model`` data-parallel workers of ``tensor_parallel_size`` GPUs each, or with
disaggregation ``prefill_workers`` prefill workers and ``workers_per_model`` decode
workers. A request is routed when it arrives (``open``), enters its worker when its
modelled overhead has passed (``submit``) and leaves through ``close``, which publishes
its ``RequestRecord``. With disaggregation a request prefills on a prefill worker, its KV
moves to a decode worker (``prompt x KV bytes per token / NVLink bandwidth``), and it
decodes there.

The attributes are ``fakeai.engine.state.ClusterState``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import socket
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass

from ...registry import ModelDef
from ..capacity import Deployment, plan
from ..clock import Ticker
from ..events import EventBus, RequestRecord
from ..latency import LatencyModel, StepModel
from . import kvhash
from .hardware import REFERENCE_GPU, arch_for, gpu
from .router import Hints, Router
from .sequence import DONE, MOVING, Seq
from .worker import Gpu, Worker

log = logging.getLogger("fakeai")

MBU, MFU = 0.8, 0.5  # achieved share of HBM bandwidth (decode) and of peak FLOP/s (batched GEMMs)
MAX_POOLS = 32  # models with live workers; the least recently used idle pool goes beyond that
NIXL_PORT = 5600  # vLLM's NIXL side-channel port (kv_transfer_params.remote_port)
_DECODE_ROUTING = Hints(strategy="kv", overlap_weight=0.0, temperature=0.0)  # decode pool: load only


@dataclass(slots=True)
class ClusterConfig:
    """The cluster's settings; the runtime-adjustable ones change through ``reconfigure``."""

    gpu_type: str
    tensor_parallel_size: int | None
    workers_per_model: int
    prefill_workers: int
    disaggregation: bool
    kv_block_size: int
    gpu_memory_utilization: float
    kv_cache_blocks: int | None
    max_num_seqs: int
    max_num_batched_tokens: int
    enable_prefix_caching: bool
    router_strategy: str
    router_overlap_weight: float
    router_temperature: float

    @classmethod
    def from_settings(cls, s) -> ClusterConfig:
        return cls(**{name: getattr(s, name) for name in cls.__slots__})


class Pool:
    """The workers serving one model."""

    __slots__ = ("model", "deployment", "step_model", "jitter", "serving", "decoders", "rr", "sessions")

    def __init__(self, model: ModelDef, deployment: Deployment, step_model: StepModel, jitter) -> None:
        self.model = model
        self.deployment = deployment
        self.step_model = step_model
        self.jitter = jitter  # (relative std, distribution) of step times
        self.serving: list[Worker] = []  # where requests arrive: "both" or "prefill" workers
        self.decoders: list[Worker] = []  # "decode" workers (disaggregation)
        self.rr = -1
        self.sessions: OrderedDict[int, Worker] = OrderedDict()  # hash of the session id -> worker

    @property
    def workers(self) -> list[Worker]:
        return self.serving + self.decoders


class Cluster:
    """``rank`` of ``ranks``: with several server processes (``--workers``) each simulates its own
    workers and GPUs, numbered ``rank, rank + ranks, ...`` so that no two processes share an
    engine or GPU index (and their metric series never collide)."""

    def __init__(self, settings, ticker: Ticker, events: EventBus, latency, rank: int = 0,
                 ranks: int = 1) -> None:
        self.config = ClusterConfig.from_settings(settings)
        self.hostname = socket.gethostname()
        self.workers: list[Worker] = []
        self.router_decisions: dict[int, int] = {}
        self.router = Router(self.config.router_strategy, self.config.router_overlap_weight,
                             self.config.router_temperature)
        self.changes: deque[dict] = deque(maxlen=100)  # the admin changes, newest last
        self._ticker = ticker
        self._events = events
        self._latency = latency  # ModelDef -> LatencyModel (the engine's, with overrides)
        self._pools: OrderedDict[str, Pool] = OrderedDict()
        self._stride = ranks
        self._next_worker = rank
        self._next_gpu = rank
        self._free_gpus: list[int] = []

    # -- ClusterState -------------------------------------------------------------------------
    @property
    def router_strategy(self) -> str:
        return self.router.strategy

    @property
    def running(self) -> int:
        return sum(w.running for w in self.workers)

    @property
    def waiting(self) -> int:
        return sum(w.waiting for w in self.workers)

    # -- pools --------------------------------------------------------------------------------
    def pool(self, model: ModelDef) -> Pool:
        pool = self._pools.get(model.id)
        if pool is not None:
            self._pools.move_to_end(model.id)
            return pool
        if len(self._pools) >= MAX_POOLS:
            self._retire_idle_pool()
        pool = self._pools[model.id] = self._build(model)
        return pool

    def _build(self, model: ModelDef) -> Pool:
        c = self.config
        spec = gpu(c.gpu_type)
        arch = arch_for(model)
        dep = plan(arch, spec.memory_bytes, c.gpu_memory_utilization, c.kv_block_size,
                   c.tensor_parallel_size, c.kv_cache_blocks)
        if not dep.fits:
            log.warning("%s does not fit on %d x %s: its KV cache is the minimum of %d blocks",
                        model.id, dep.tp, c.gpu_type, dep.kv_blocks)
        ref = gpu(REFERENCE_GPU)
        prof = model.latency
        weight_read = dep.weights_bytes / (spec.bandwidth_gbps * 1e9 * MBU)
        compute = 2 * arch.active_b * 1e9 / dep.tp / (spec.bf16_tflops * 1e12 * MFU)
        step = StepModel(
            itl_s=prof.itl_ms / 1000 * ref.bandwidth_gbps / spec.bandwidth_gbps,
            prefill_s_per_token=prof.prefill_ms_per_token / 1000 * ref.bf16_tflops / spec.bf16_tflops,
            weights_bytes=max(dep.weights_bytes, 1),
            token_bytes=dep.token_bytes,
            compute_ratio=compute / weight_read if weight_read > 0 else 0.0,
        )
        lm: LatencyModel = self._latency(model)
        pool = Pool(model, dep, step, (lm.jitter, lm.jitter_dist))
        if c.disaggregation:
            self._resize(pool, "prefill", c.prefill_workers)
            self._resize(pool, "decode", c.workers_per_model)
        else:
            self._resize(pool, "both", c.workers_per_model)
        return pool

    def _resize(self, pool: Pool, role: str, n: int) -> None:
        group = pool.decoders if role == "decode" else pool.serving
        live = [w for w in group if not w.draining]
        for w in group:  # growing: bring back workers that were draining first
            if len(live) >= n:
                break
            if w.draining:
                w.draining = False
                live.append(w)
        while len(live) < n:
            w = self._new_worker(pool, role)
            group.append(w)
            live.append(w)
        for w in sorted(live, key=lambda w: w.index)[n:]:
            w.draining = True
            if w.idle:
                self._retire(pool, w)

    def _new_worker(self, pool: Pool, role: str) -> Worker:
        c = self.config
        index = self._next_worker
        self._next_worker += self._stride
        spec = gpu(c.gpu_type)
        gpus = [Gpu.make(self.hostname, self._take_gpu(), spec, index) for _ in range(pool.deployment.tp)]
        w = Worker(index, pool.model.id, role, pool.deployment, gpus, pool.step_model,
                   max_num_seqs=c.max_num_seqs, max_batched_tokens=c.max_num_batched_tokens,
                   caching=c.enable_prefix_caching, jitter=pool.jitter[0], jitter_dist=pool.jitter[1],
                   ticker=self._ticker, events=self._events, on_handoff=self.handoff)
        self.workers.append(w)
        self.router_decisions.setdefault(index, 0)
        return w

    def _take_gpu(self) -> int:
        if self._free_gpus:
            return heapq.heappop(self._free_gpus)
        self._next_gpu += self._stride
        return self._next_gpu - self._stride

    def _retire(self, pool: Pool, w: Worker) -> None:
        (pool.decoders if w.role == "decode" else pool.serving).remove(w)
        self.workers.remove(w)
        for g in w.gpus:
            heapq.heappush(self._free_gpus, g.index)
        w.stop()
        w.kv.clear()
        for sid in [s for s, x in pool.sessions.items() if x is w]:
            del pool.sessions[sid]
        self.router_decisions.pop(w.index, None)  # indices are never reused: keep the dict bounded

    def _retire_idle_pool(self) -> None:
        for model_id, pool in self._pools.items():
            if all(w.idle for w in pool.workers):
                for w in pool.workers:
                    self._retire(pool, w)
                del self._pools[model_id]
                return

    # -- requests -----------------------------------------------------------------------------
    def open(self, gen, stream: bool, lat: LatencyModel) -> Seq:
        """A request arriving: its sequence, routed to a worker (not entered yet)."""
        arrival = gen.arrival if gen.arrival is not None else self._ticker.time()
        seq = Seq(gen, gen.endpoint, stream, arrival, gen.timing.ttft if lat.fixed_ttft or gen.pin_ttft else None,
                  gen.timing.itl if lat.fixed_itl or gen.pin_itl else None)
        kvt = gen.kv_transfer
        if kvt and kvt.get("do_remote_prefill"):
            seq.remote_prefill = True
        pool = self.pool(gen.model)
        if seq.ids is not None and self.config.enable_prefix_caching:
            seq.hashes = kvhash.sequence_hashes(seq.ids, self.config.kv_block_size)
        w = self.router.pick(pool, seq, gen.hints)
        self.router_decisions[w.index] += 1
        seq.worker = w
        return seq

    def transfer_s(self, seq: Seq) -> float:
        """Time to move ``seq``'s prompt KV between workers (per GPU, over NVLink)."""
        w = seq.worker
        if w is None:
            return 0.0
        return seq.prompt * w.deployment.token_bytes / (w.gpus[0].spec.nvlink_gbps * 1e9)

    def submit(self, seq: Seq) -> None:
        seq.worker.submit(seq, self._ticker.time())

    def handoff(self, seq: Seq, t: float) -> None:
        """``seq`` finished its prefill on a prefill worker at ``t``: move it to a decode worker."""
        src = seq.worker
        pool = self._pools.get(seq.model)
        if src is None or pool is None or not pool.decoders:
            return
        src.release(seq, t)
        dst = self.router.pick(pool, seq, _DECODE_ROUTING, pool.decoders)
        self.router_decisions[dst.index] += 1
        delay = 0.0 if seq.ttft is not None else self.transfer_s(seq)
        seq.state = MOVING
        seq.transferred = True
        seq.worker = None
        asyncio.get_running_loop().call_at(t + delay, self._arrive, seq, dst)

    def _arrive(self, seq: Seq, dst: Worker) -> None:
        if seq.state != DONE:
            dst.receive(seq, self._ticker.time())

    def close(self, seq: Seq, tokens: int, aborted: bool) -> None:
        """``seq`` is over: free what it holds and publish its record."""
        now = self._ticker.time()
        w = seq.worker
        if w is not None:
            w.finish(seq, now, tokens)
            if w.draining and w.idle:
                pool = self._pools.get(w.model)
                if pool is not None and w in pool.workers:
                    self._retire(pool, w)
        seq.state = DONE
        gen = seq.gen
        end = now if aborted else (seq.end_time() or now)
        first = seq.first if seq.first is not None and seq.first <= end else end
        if aborted:
            completion = sum(min(len(c.ids), tokens) for c in gen.choices)
        else:
            completion = gen.completion_tokens + gen.unreturned_tokens
            if gen.kv_transfer and gen.kv_transfer.get("do_remote_decode") and w is not None:
                gen.kv_transfer_params = self._remote_decode_params(seq, w)
        reason = "abort" if aborted else (gen.choices[0].finish_reason if gen.choices else "stop")
        self._events.finished(RequestRecord(
            model=seq.model, worker=w.index if w is not None else -1, endpoint=seq.endpoint,
            arrival=seq.arrival, scheduled=seq.scheduled if seq.scheduled is not None else end,
            first_token=first, finished=end, prompt_tokens=seq.prompt, cached_tokens=gen.cached_tokens,
            completion_tokens=completion, max_tokens=gen.max_tokens, n=seq.n, finish_reason=reason,
            stream=seq.stream))

    def _remote_decode_params(self, seq: Seq, w: Worker) -> dict:
        """vLLM's answer to a prefill request with ``do_remote_decode``: where its KV is."""
        bs, total = w.block_size, w.kv_blocks_total
        blocks = -(-seq.prompt // bs)
        ids = [h % total for h in (seq.hashes or [])][:blocks]
        ids += [(ids[-1] + 1 + i) % total if ids else i for i in range(blocks - len(ids))]
        return {"do_remote_prefill": True, "do_remote_decode": False, "remote_block_ids": ids,
                "remote_engine_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.hostname}/worker/{w.index}")),
                "remote_host": self.hostname, "remote_port": NIXL_PORT + w.index, "tp_size": w.tp}

    # -- control ------------------------------------------------------------------------------
    def reconfigure(self, key: str, value) -> None:
        """Change one runtime setting (already validated)."""
        c = self.config
        setattr(c, key, value)
        if key == "max_num_seqs":
            for w in self.workers:
                w.set_max_num_seqs(value)
        elif key in ("workers_per_model", "prefill_workers"):
            for pool in self._pools.values():
                if c.disaggregation:
                    self._resize(pool, "decode" if key == "workers_per_model" else "prefill", value)
                elif key == "workers_per_model":
                    self._resize(pool, "both", value)
        elif key == "router_strategy":
            self.router.strategy = value
        elif key == "router_overlap_weight":
            self.router.overlap_weight = value
        elif key == "router_temperature":
            self.router.temperature = value

    def reset_prefix_cache(self) -> int:
        """Drop every unpinned cached block on every worker; how many went."""
        return sum(w.kv.clear() for w in self.workers)
