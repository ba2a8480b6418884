"""The read-only view of the simulated cluster that telemetry and the API read.

The engine's cluster implements these protocols; telemetry derives every
gauge (vLLM, Dynamo, DCGM, ``/cluster``) from them and from the cumulative
counters here, never from its own random numbers. Counters only grow; rates
and utilisation come from differences between two reads.
"""

from __future__ import annotations

from typing import Protocol


class GpuSpec(Protocol):
    name: str  # "NVIDIA H100 80GB HBM3"
    memory_bytes: int
    tdp_w: float
    idle_w: float
    sm_clock_max_mhz: int
    sm_clock_idle_mhz: int
    mem_clock_mhz: int
    sm_count: int
    bandwidth_gbps: float  # HBM bandwidth, GB/s
    nvlink_gbps: float


class GpuState(Protocol):
    index: int  # GPU index on its host (dcgm "gpu" label)
    uuid: str  # stable "GPU-xxxxxxxx-xxxx-..." derived from host + index
    pci_bus_id: str
    spec: GpuSpec
    worker: int  # index of the worker (tensor-parallel group) that owns it


class WorkerState(Protocol):
    index: int
    model: str  # served model id
    role: str  # "both", "prefill" or "decode"
    tp: int  # tensor-parallel size (GPUs of this worker)
    gpus: list[GpuState]
    running: int  # sequences in the running batch
    waiting: int  # requests in the waiting queue
    max_num_seqs: int
    block_size: int
    kv_blocks_total: int
    kv_blocks_used: int  # blocks held by running sequences or cached (pinned + evictable)
    weights_bytes: int  # model weights per GPU
    block_bytes: int  # KV bytes per block per GPU
    # cumulative counters
    busy_seconds: float  # time this worker spent executing steps
    steps: int
    prompt_tokens_total: int  # prompt tokens computed (prefill, after cache hits)
    generation_tokens_total: int
    prefix_query_tokens: int  # prompt tokens looked up in the prefix cache
    prefix_hit_tokens: int  # of those, found cached
    preemptions: int
    evicted_blocks: int
    requests_finished: int


class ClusterState(Protocol):
    hostname: str
    workers: list[WorkerState]
    router_strategy: str
    router_decisions: dict[int, int]  # worker index -> requests routed there (cumulative)
