"""What fits on one worker: tensor-parallel size, weights and KV blocks per GPU.

    weights per GPU     = params x weight_bytes / TP
    KV bytes per token  = 2 (K, V) x layers x max(1, kv_heads / TP) x head_dim x 2 (BF16),  per GPU
    block bytes         = block_size x KV bytes per token
    KV blocks           = floor((GPU memory x utilisation - weights per GPU) / block bytes)

KV heads are split across the tensor-parallel ranks and replicated once there are more
ranks than heads, as vLLM does. The automatic TP is the smallest power of two whose
weights take at most 75 % of a GPU's usable memory, leaving the rest for KV cache.
See docs/cluster.md.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTS_SHARE = 0.75  # auto TP: weights may take this much of the usable memory
MAX_TP = 64
MIN_BLOCKS = 16  # a worker always has some KV cache, even when the model barely fits


@dataclass(frozen=True, slots=True)
class Arch:
    """A model's size and attention shape."""

    params_b: float
    active_b: float
    weight_bytes: float
    layers: int
    kv_heads: int
    head_dim: int

    def token_bytes(self, tp: int) -> int:
        """KV bytes per token on one GPU of a ``tp``-way group."""
        heads = max(1, self.kv_heads // tp)
        return 2 * self.layers * heads * self.head_dim * 2

    @property
    def weights_bytes(self) -> int:
        return int(self.params_b * 1e9 * self.weight_bytes)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One worker: ``tp`` GPUs of ``memory_bytes`` each serving a model."""

    tp: int
    memory_bytes: int  # per GPU
    weights_bytes: int  # per GPU
    token_bytes: int  # KV bytes per token, per GPU
    block_size: int
    kv_blocks: int
    fits: bool  # False: the weights leave no room, the cache is the MIN_BLOCKS floor

    @property
    def block_bytes(self) -> int:
        return self.block_size * self.token_bytes


def auto_tp(arch: Arch, memory_bytes: int, utilization: float) -> int:
    usable = memory_bytes * utilization
    tp = 1
    while tp < MAX_TP and arch.weights_bytes / tp > WEIGHTS_SHARE * usable:
        tp *= 2
    return tp


def plan(arch: Arch, memory_bytes: int, utilization: float, block_size: int,
         tp: int | None = None, blocks: int | None = None) -> Deployment:
    """Size a worker; ``tp`` None picks it, ``blocks`` overrides the KV block count."""
    tp = tp or auto_tp(arch, memory_bytes, utilization)
    weights = arch.weights_bytes // tp
    token = arch.token_bytes(tp)
    room = int(memory_bytes * utilization) - weights
    fitted = room // (block_size * token)
    fits = fitted >= MIN_BLOCKS
    if blocks is None:
        blocks = max(fitted, MIN_BLOCKS)
    return Deployment(tp, memory_bytes, weights, token, block_size, blocks, fits)
