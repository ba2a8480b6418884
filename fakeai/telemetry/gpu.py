"""The physics of the simulated GPUs, derived from the work their workers do.

Nothing here is sampled at random: every figure follows from the cluster's
cumulative counters (busy seconds, prompt and generated tokens) and KV blocks.

* Utilisation ``u`` is the share of the last ``window`` seconds its worker spent
  executing steps (the difference of ``busy_seconds`` between two reads, like
  NVML's sampled utilisation); ``p``, the prefill share, is prompt tokens over
  all tokens computed in that window.
* Power while busy depends on the kind of work: decode is memory-bound, prefill
  compute-bound, so ``P = idle + (TDP - idle) * u * (0.7 + 0.3 p)``, capped at the
  TDP (the power limit).
* Energy integrates that power between reads (with the utilisation of that
  interval), from a boot-time offset, so it only grows.
* Temperature is a first-order thermal model, ``dT/dt = (T_amb + R P - T) / tau``,
  integrated in closed form between reads with the interval's mean power:
  ``T <- T_ss + (T - T_ss) exp(-dt / tau)``. It lags power by ``tau``.
* Framebuffer used = CUDA context + model weights + the KV blocks in use.

A GPU's constants vary a little with its UUID (a chassis position runs a few
degrees warmer, a chip draws a few percent more), deterministically.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass

MIB = 1024 * 1024
AMBIENT_C = 27.0  # inlet air
RISE_AT_TDP_C = 46.0  # steady-state rise of the core over ambient at full power
MEM_RISE_AT_TDP_C = 40.0
MEM_OFFSET_C = 4.0
TAU_GPU_S = 40.0
TAU_MEM_S = 60.0
CUDA_CONTEXT_MIB = 512
DRIVER_VERSION = "570.133.20"


@dataclass(slots=True)
class Reading:
    """One GPU's figures at one read."""

    util: float  # 0-1, over the window
    tensor_active: float  # 0-1
    dram_active: float  # 0-1
    power_w: float
    energy_mj: float
    gpu_temp_c: float
    mem_temp_c: float
    sm_clock_mhz: int
    mem_clock_mhz: int
    fb_total_mib: int
    fb_used_mib: int
    fb_free_mib: int
    fb_reserved_mib: int
    pcie_tx_bps: float
    pcie_rx_bps: float
    nvlink_bytes: int


class _Window:
    """Recent (time, busy, prompt, generated) samples of one worker, for windowed rates."""

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float, int, int]] = deque()

    def rates(self, now: float, sample: tuple[float, float, int, int], window: float):
        """(utilisation, prefill share, tokens/s) over at least ``window`` seconds (or since the
        first sample), then remember ``sample``."""
        s = self.samples
        if s and sample[1] < s[-1][1]:  # counters went back (worker rebuilt): start over
            s.clear()
        while len(s) > 1 and s[1][0] <= now - window:
            s.popleft()
        ref = s[0] if s else sample
        s.append(sample)
        return _rates(ref, sample)


def _rates(a, b) -> tuple[float, float, float]:
    dt = b[0] - a[0]
    if dt <= 0:
        return 0.0, 0.0, 0.0
    util = min(max((b[1] - a[1]) / dt, 0.0), 1.0)
    prompt, gen = max(b[2] - a[2], 0), max(b[3] - a[3], 0)
    share = prompt / (prompt + gen) if prompt + gen else 0.0
    return util, share, (prompt + gen) / dt


class _Thermal:
    """Per-GPU integrated state: energy and temperatures as of the last read."""

    __slots__ = ("busy", "energy_mj", "gen", "mem_temp", "prompt", "t", "temp")


class GpuModel:
    """Reads the cluster's GPUs. ``clock`` is monotonic seconds (the engine's clock)."""

    def __init__(self, clock, window: float = 1.0) -> None:
        self.clock = clock
        self.window = window
        self._windows: dict[int, _Window] = {}
        self._thermal: dict[str, _Thermal] = {}

    def read(self, workers) -> list[tuple[object, object, Reading]]:
        """``(worker, gpu, Reading)`` for every GPU of every worker, at the current time."""
        now = self.clock()
        out = []
        for w in workers:
            sample = (now, w.busy_seconds, w.prompt_tokens_total, w.generation_tokens_total)
            win = self._windows.get(w.index)
            if win is None:
                win = self._windows[w.index] = _Window()
            util, share, tokens_per_s = win.rates(now, sample, self.window)
            for g in w.gpus:
                out.append((w, g, self._read_gpu(w, g, sample, util, share, tokens_per_s)))
        return out

    def _read_gpu(self, w, g, sample, util: float, share: float, tokens_per_s: float) -> Reading:
        spec = g.spec
        jitter = _unit(g.uuid)
        ambient = AMBIENT_C + 4.0 * jitter  # warmer slots further along the airflow
        efficiency = 1.0 + 0.04 * (jitter - 0.5)
        st = self._thermal.get(g.uuid)
        if st is None:
            st = self._thermal[g.uuid] = _boot_state(spec, sample, ambient, jitter)
        else:
            self._integrate(st, spec, sample, ambient, efficiency)
        power = _power(spec, util, share, efficiency)
        total_mib = spec.memory_bytes // MIB
        reserved = max(256, int(total_mib * 0.0063))
        used = CUDA_CONTEXT_MIB + (w.weights_bytes + w.kv_blocks_used * w.block_bytes) // MIB
        used = min(used, total_mib - reserved)
        active = util > 0.0
        sm_span = spec.sm_clock_max_mhz - spec.sm_clock_idle_mhz
        tp_traffic = 0.2 * spec.nvlink_gbps * 1e9 if w.tp > 1 else 0.0
        return Reading(
            util=util,
            tensor_active=util * (0.15 + 0.55 * share),
            dram_active=util * (0.75 - 0.45 * share),
            power_w=power,
            energy_mj=st.energy_mj,
            gpu_temp_c=st.temp,
            mem_temp_c=st.mem_temp,
            sm_clock_mhz=int(spec.sm_clock_idle_mhz + sm_span * min(1.0, util * 10.0)),
            mem_clock_mhz=spec.mem_clock_mhz,
            fb_total_mib=total_mib,
            fb_used_mib=used,
            fb_free_mib=total_mib - reserved - used,
            fb_reserved_mib=reserved,
            # token ids and sampled ids cross PCIe, plus launch/sync traffic while busy
            pcie_tx_bps=4.0 * tokens_per_s + (2.0e5 * util if active else 0.0),
            pcie_rx_bps=8.0 * tokens_per_s + (5.0e5 * util if active else 0.0),
            # tensor-parallel all-reduces keep ~20% of the links busy while the worker runs
            nvlink_bytes=int(w.busy_seconds * tp_traffic),
        )

    @staticmethod
    def _integrate(st: _Thermal, spec, sample, ambient: float, efficiency: float) -> None:
        t, busy, prompt, gen = sample
        dt = t - st.t
        if dt <= 0:
            return
        if busy < st.busy:  # counters went back (worker rebuilt): count from here
            st.busy, st.prompt, st.gen = busy, prompt, gen
        util, share, _ = _rates((st.t, st.busy, st.prompt, st.gen), sample)
        power = _power(spec, util, share, efficiency)
        st.energy_mj += power * dt * 1000.0
        st.temp = _relax(st.temp, ambient + RISE_AT_TDP_C * power / spec.tdp_w, dt, TAU_GPU_S)
        st.mem_temp = _relax(st.mem_temp, ambient + MEM_OFFSET_C + MEM_RISE_AT_TDP_C * power / spec.tdp_w,
                             dt, TAU_MEM_S)
        st.t, st.busy, st.prompt, st.gen = sample


def _power(spec, util: float, share: float, efficiency: float) -> float:
    dynamic = (spec.tdp_w - spec.idle_w) * util * (0.7 + 0.3 * share) * efficiency
    return min(spec.idle_w + dynamic, spec.tdp_w)


def _relax(temp: float, steady: float, dt: float, tau: float) -> float:
    """Closed-form first-order step: ``temp`` after ``dt`` seconds towards ``steady``."""
    return steady + (temp - steady) * math.exp(-dt / tau)


def _boot_state(spec, sample, ambient: float, jitter: float) -> _Thermal:
    """A GPU first seen now: at its idle steady state, with the energy of days of uptime."""
    st = _Thermal()
    st.t, st.busy, st.prompt, st.gen = sample
    idle = spec.idle_w
    uptime_s = 86400.0 * (1.0 + 29.0 * jitter)
    st.energy_mj = idle * uptime_s * 1000.0
    st.temp = ambient + RISE_AT_TDP_C * idle / spec.tdp_w
    st.mem_temp = ambient + MEM_OFFSET_C + MEM_RISE_AT_TDP_C * idle / spec.tdp_w
    return st


def _unit(key: str) -> float:
    """A stable number in [0, 1) from ``key``."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") / 2.0 ** 64
