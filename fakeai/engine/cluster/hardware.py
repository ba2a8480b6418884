"""The hardware the cluster is made of: GPU types (``gpus.toml``) and model sizes (``models.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..capacity import Arch

REFERENCE_GPU = "H100-80GB"  # the catalog's latency profiles are for this GPU
GPU_TYPES = ("A100-80GB", "H100-80GB", "H200", "B200")

# An unlisted model: an 8B-class dense transformer (Llama 3.1 8B's shape).
DEFAULT_ARCH = Arch(params_b=8.0, active_b=8.0, weight_bytes=2.0, layers=32, kv_heads=8, head_dim=128)


@dataclass(frozen=True, slots=True)
class GpuSpec:
    key: str  # catalog key, e.g. "H100-80GB"
    name: str  # "NVIDIA H100 80GB HBM3"
    memory_bytes: int
    tdp_w: float
    idle_w: float
    sm_clock_max_mhz: int
    sm_clock_idle_mhz: int
    mem_clock_mhz: int
    sm_count: int
    bandwidth_gbps: float
    nvlink_gbps: float
    pcie_gbps: float
    bf16_tflops: float

    @property
    def memory_mib(self) -> int:
        return self.memory_bytes // (1 << 20)


def _read(name: str) -> dict:
    return tomllib.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@cache
def gpus() -> dict[str, GpuSpec]:
    out = {}
    for key, t in _read("gpus.toml").items():
        mib = t.pop("memory_mib")
        out[key] = GpuSpec(key=key, memory_bytes=mib << 20, **t)
    return out


def gpu(key: str) -> GpuSpec:
    return gpus()[key]


@cache
def _archs() -> dict[str, dict]:
    return _read("models.toml")


def estimate(params_b: float, active_b: float | None = None, weight_bytes: float = 2.0) -> Arch:
    """A dense GQA transformer of ``params_b`` billion parameters: 8 KV heads of 128,
    KV bytes per token 128 KiB x (params_b / 8) ^ 0.4 (Llama 3: 1B 32 KiB, 8B 128 KiB,
    70B 320 KiB, 405B 504 KiB), expressed as layers."""
    per_token = 131072 * (params_b / 8.0) ** 0.4
    layers = max(1, round(per_token / (2 * 8 * 128 * 2)))
    return Arch(params_b, active_b or params_b, weight_bytes, layers, 8, 128)


def arch_for(model) -> Arch:
    """The architecture of ``model`` (a ModelDef): its own entry, its parent's, or an estimate."""
    table = _archs()
    t = table.get(model.id) or (table.get(model.parent) if model.parent else None)
    if t is None:
        return DEFAULT_ARCH
    if "layers" not in t:
        return estimate(t["params_b"], t.get("active_b"), t.get("weight_bytes", 2.0))
    return Arch(t["params_b"], t.get("active_b", t["params_b"]), t.get("weight_bytes", 2.0),
                t["layers"], t["kv_heads"], t["head_dim"])
