"""Small stand-ins for the engine's cluster (``fakeai.engine.state`` protocols), a settable
clock and record builders, for the telemetry unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from fakeai.config import Settings
from fakeai.engine.events import EventBus, RequestRecord
from fakeai.telemetry.hub import Telemetry

MIB = 1024 * 1024


@dataclass
class Spec:
    name: str = "NVIDIA H100 80GB HBM3"
    memory_bytes: int = 81559 * MIB
    tdp_w: float = 700.0
    idle_w: float = 70.0
    sm_clock_max_mhz: int = 1980
    sm_clock_idle_mhz: int = 345
    mem_clock_mhz: int = 2619
    sm_count: int = 132
    bandwidth_gbps: float = 3350.0
    nvlink_gbps: float = 900.0


@dataclass
class Gpu:
    index: int
    uuid: str
    pci_bus_id: str
    spec: Spec
    worker: int


@dataclass
class Worker:
    index: int
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    role: str = "both"
    tp: int = 1
    gpus: list = field(default_factory=list)
    running: int = 0
    waiting: int = 0
    max_num_seqs: int = 256
    block_size: int = 16
    kv_blocks_total: int = 10000
    kv_blocks_used: int = 0  # held by running requests or cached
    kv_blocks_active: int = 0  # held by running requests
    weights_bytes: int = 16 * 1024 * MIB
    block_bytes: int = 2 * MIB
    busy_seconds: float = 0.0
    steps: int = 0
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    prefix_query_tokens: int = 0
    prefix_hit_tokens: int = 0
    preemptions: int = 0
    evicted_blocks: int = 0
    requests_finished: int = 0


@dataclass
class Cluster:
    hostname: str = "sim-node-0"
    workers: list = field(default_factory=list)
    router_strategy: str = "kv"
    router_decisions: dict = field(default_factory=dict)


def cluster(workers: int = 2, tp: int = 1, roles: tuple[str, ...] = ()) -> Cluster:
    out = Cluster()
    gpu = 0
    for i in range(workers):
        w = Worker(index=i, tp=tp, role=roles[i] if roles else "both")
        for _ in range(tp):
            w.gpus.append(Gpu(gpu, f"GPU-{gpu:08x}-1111-2222-3333-444455556666",
                              f"00000000:{0x18 + gpu:02X}:00.0", Spec(), i))
            gpu += 1
        out.workers.append(w)
    return out


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class _Model:
    context_window = 131072


class _Registry:
    def get(self, model_id: str):
        return _Model()


class FakeEngine:
    def __init__(self, cl: Cluster | None) -> None:
        self.events = EventBus()
        self.registry = _Registry()
        if cl is not None:
            self.cluster = cl


def telemetry(cl: Cluster | None = None, clock: Clock | None = None, **settings) -> Telemetry:
    engine = FakeEngine(cl if cl is not None else cluster())
    return Telemetry(Settings(**settings), engine, clock=clock or Clock())


def record(model: str = "meta-llama/Llama-3.1-8B-Instruct", worker: int = 0, *, queue: float = 0.0,
           prefill: float = 0.05, decode: float = 0.99, prompt: int = 100, cached: int = 0,
           completion: int = 100, max_tokens: int | None = 256, n: int = 1, finish: str = "stop",
           stream: bool = True, endpoint: str = "chat") -> RequestRecord:
    arrival = 50.0
    return RequestRecord(model=model, worker=worker, endpoint=endpoint, arrival=arrival,
                         scheduled=arrival + queue, first_token=arrival + queue + prefill,
                         finished=arrival + queue + prefill + decode, prompt_tokens=prompt,
                         cached_tokens=cached, completion_tokens=completion, max_tokens=max_tokens, n=n,
                         finish_reason=finish, stream=stream)
