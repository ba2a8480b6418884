"""The simulated GPUs (utilisation, power, energy, temperature, memory, clocks) over a fake cluster
and a settable clock, and dcgm-exporter's exposition: label set and order, options, parsing."""

from __future__ import annotations

import itertools
import math
import random

from prometheus_client.parser import text_string_to_metric_families

from fakeai.telemetry.gpu import CUDA_CONTEXT_MIB, MIB, TAU_GPU_S
from tests.unit.telemetry_fakes import Clock, cluster, telemetry

DEFAULT_FIELDS = [
    "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
]
LABEL_ORDER = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION"]


class Sim:
    """A one-worker cluster whose worker is busy ``load`` of the time, read every ``step`` seconds."""

    def __init__(self, tp: int = 1, **settings) -> None:
        self.clock = Clock()
        self.cl = cluster(workers=1, tp=tp)
        self.w = self.cl.workers[0]
        self.t = telemetry(self.cl, self.clock, **settings)
        self.read()

    def run(self, seconds: float, load: float, prefill_share: float = 0.0, step: float = 0.25):
        out = []
        for _ in range(round(seconds / step)):
            self.clock.t += step
            self.w.busy_seconds += load * step
            tokens = int(4000 * load * step)
            self.w.prompt_tokens_total += int(tokens * prefill_share)
            self.w.generation_tokens_total += tokens - int(tokens * prefill_share)
            out.append(self.read())
        return out

    def read(self):
        return self.t.gpus.read(self.cl.workers)[0][2]


def test_power_follows_utilisation_between_idle_and_tdp():
    sim = Sim()
    spec = sim.w.gpus[0].spec
    assert abs(sim.read().power_w - spec.idle_w) < 1e-9  # idle at start
    last = None
    for load in (0.0, 0.2, 0.5, 0.8, 1.0):
        r = sim.run(2.0, load)[-1]
        assert abs(r.util - load) < 1e-9
        assert spec.idle_w <= r.power_w <= spec.tdp_w
        if last is not None:
            assert r.power_w > last
        last = r.power_w
    # prefill (compute-bound) draws more than decode (memory-bound) at the same utilisation,
    # and keeps the tensor pipes busier while decode keeps DRAM busier
    decode = sim.run(2.0, 0.9, prefill_share=0.0)[-1]
    prefill = sim.run(2.0, 0.9, prefill_share=1.0)[-1]
    assert prefill.power_w > decode.power_w
    assert prefill.tensor_active > decode.tensor_active
    assert prefill.dram_active < decode.dram_active
    assert sim.run(2.0, 1.0, prefill_share=1.0)[-1].power_w <= spec.tdp_w
    # and back to idle once the work stops
    assert abs(sim.run(2.0, 0.0)[-1].power_w - spec.idle_w) < 1e-9


def test_utilisation_is_measured_over_a_window_of_busy_seconds():
    sim = Sim()
    sim.run(3.0, 0.5)
    # several reads within the window keep seeing the window's average, not a single instant
    for _ in range(3):
        sim.clock.t += 0.01
        sim.w.busy_seconds += 0.01
        r = sim.read()
        assert 0.45 < r.util < 0.6
    # a worker rebuilt with fresh counters starts over instead of reading a negative rate
    sim.w.busy_seconds = 0.0
    sim.clock.t += 0.5
    assert sim.read().util == 0.0


def test_energy_only_increases_and_integrates_power():
    sim = Sim()
    rng = random.Random(3)
    energies = [sim.read().energy_mj]
    for _ in range(40):
        for r in sim.run(rng.choice((0.25, 0.5, 1.0)), rng.random(), rng.random()):
            energies.append(r.energy_mj)
    assert all(b >= a for a, b in itertools.pairwise(energies))
    assert energies[-1] > energies[0]
    # over a steady load, energy grows by power x time (mJ)
    sim.run(2.0, 0.6)
    e0 = sim.read().energy_mj
    readings = sim.run(10.0, 0.6)
    assert abs((readings[-1].energy_mj - e0) / 1000.0 / 10.0 - readings[-1].power_w) < 1e-6 * readings[-1].power_w
    # since boot: days of idle draw before the first read
    assert energies[0] > sim.w.gpus[0].spec.idle_w * 86400 * 1000 * 0.99


def test_temperature_lags_power():
    sim = Sim()
    idle_temp = sim.read().gpu_temp_c
    first = sim.run(1.0, 1.0)[-1]
    # power jumps at once; the temperature has barely moved
    assert first.power_w > 0.65 * sim.w.gpus[0].spec.tdp_w
    assert idle_temp < first.gpu_temp_c < idle_temp + 3
    temps = [r.gpu_temp_c for r in sim.run(5 * TAU_GPU_S, 1.0)]
    assert all(b > a for a, b in itertools.pairwise(temps))  # rising all along
    hot = temps[-1]
    assert hot > idle_temp + 20
    # a step's closed form: after one tau, 1 - 1/e of the way from where it was to steady state
    steady = hot + (hot - temps[-2]) / (1 - math.exp(-0.25 / TAU_GPU_S)) * math.exp(-0.25 / TAU_GPU_S)
    assert abs(steady - hot) < 0.2  # settled
    # load stops: power falls within the utilisation window, the temperature only decays
    after = sim.run(1.0, 0.0)[-1]
    assert abs(after.power_w - sim.w.gpus[0].spec.idle_w) < 1e-9
    assert after.gpu_temp_c > hot - 2
    cooled = sim.run(TAU_GPU_S, 0.0)[-1].gpu_temp_c
    expected = idle_temp + (after.gpu_temp_c - idle_temp) * math.exp(-1.0)
    assert abs(cooled - expected) < 0.5
    assert after.mem_temp_c > idle_temp  # memory runs warmer too


def test_framebuffer_holds_weights_and_kv_blocks_in_use():
    sim = Sim()
    w = sim.w
    r0 = sim.read()
    assert r0.fb_used_mib == CUDA_CONTEXT_MIB + w.weights_bytes // MIB
    assert r0.fb_used_mib + r0.fb_free_mib + r0.fb_reserved_mib == r0.fb_total_mib == 81559
    w.kv_blocks_used = 3000
    r1 = sim.read()
    assert r1.fb_used_mib - r0.fb_used_mib == 3000 * w.block_bytes // MIB
    assert r1.fb_free_mib == r0.fb_free_mib - (r1.fb_used_mib - r0.fb_used_mib)


def test_clocks_and_nvlink_follow_the_work():
    sim = Sim(tp=2)
    spec = sim.w.gpus[0].spec
    idle = sim.read()
    assert idle.sm_clock_mhz == spec.sm_clock_idle_mhz and idle.mem_clock_mhz == spec.mem_clock_mhz
    busy = sim.run(2.0, 0.8)[-1]
    assert busy.sm_clock_mhz == spec.sm_clock_max_mhz
    assert busy.nvlink_bytes > idle.nvlink_bytes  # tensor-parallel traffic
    assert busy.pcie_rx_bps > idle.pcie_rx_bps
    single = Sim(tp=1)
    assert single.run(2.0, 0.8)[-1].nvlink_bytes == 0


def test_both_gpus_of_a_worker_are_listed_with_stable_uuids():
    sim = Sim(tp=2)
    rows = sim.t.gpus.read(sim.cl.workers)
    assert [g.uuid for _, g, _ in rows] == [g.uuid for g in sim.w.gpus]
    assert rows[0][2].util == rows[1][2].util


def parse(text: bytes) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def test_exposition_has_the_default_counter_set_with_dcgm_labels_in_order():
    t = telemetry(cluster(workers=2, tp=2))
    text = t.dcgm_text()
    fams = parse(text)
    assert list(fams) == DEFAULT_FIELDS
    assert fams["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"].type == "counter"
    assert fams["DCGM_FI_DEV_POWER_USAGE"].type == "gauge"
    for f in fams.values():
        assert len(f.samples) == 4
    # label order as dcgm-exporter writes it, counters without a _total suffix
    line = next(ln for ln in text.decode().splitlines() if ln.startswith("DCGM_FI_DEV_GPU_TEMP{"))
    keys = [part.split("=")[0] for part in line[line.index("{") + 1:line.index("}")].split(",")]
    assert keys == LABEL_ORDER
    assert b"_total" not in text
    s = fams["DCGM_FI_DEV_GPU_UTIL"].samples[2]
    assert s.labels["gpu"] == "2" and s.labels["device"] == "nvidia2"
    assert s.labels["modelName"] == "NVIDIA H100 80GB HBM3" and s.labels["Hostname"] == "sim-node-0"
    assert s.labels["UUID"] == "GPU-00000002-1111-2222-3333-444455556666"


def test_hostname_label_case_and_pod_mapping_options():
    cl = cluster(workers=3, roles=("prefill", "decode", "both"))
    plain = parse(telemetry(cl).dcgm_text())["DCGM_FI_DEV_GPU_UTIL"].samples[0].labels
    assert "Hostname" in plain and "hostname" not in plain and "pod" not in plain
    lower = parse(telemetry(cl, dcgm_hostname_label="hostname").dcgm_text())
    assert all(s.labels["hostname"] == "sim-node-0" and "Hostname" not in s.labels
               for s in lower["DCGM_FI_DEV_GPU_UTIL"].samples)
    text = telemetry(cl, dcgm_pod_labels=True, k8s_namespace="inference").dcgm_text()
    pods = parse(text)["DCGM_FI_DEV_FB_USED"].samples
    assert [(s.labels["pod"], s.labels["namespace"], s.labels["container"]) for s in pods] == [
        ("fakeai-prefill-worker-0", "inference", "main"),
        ("fakeai-decode-worker-1", "inference", "main"),
        ("fakeai-worker-2", "inference", "main"),
    ]
    line = next(ln for ln in text.decode().splitlines() if ln.startswith("DCGM_FI_DEV_FB_USED{"))
    keys = [part.split("=")[0] for part in line[line.index("{") + 1:line.index("}")].split(",")]
    assert keys == LABEL_ORDER + ["container", "namespace", "pod"]


def test_json_matches_the_text_and_no_cluster_means_no_gpus():
    t = telemetry(cluster(workers=1, tp=2))
    js = t.dcgm_json()
    assert js["hostname"] == "sim-node-0" and len(js["gpus"]) == 2
    g = js["gpus"][1]
    assert g["labels"]["gpu"] == "1" and g["worker"] == 0
    assert set(g["metrics"]) == set(DEFAULT_FIELDS)
    assert g["metrics"]["DCGM_FI_DEV_FB_USED"] + g["metrics"]["DCGM_FI_DEV_FB_FREE"] \
        + g["metrics"]["DCGM_FI_DEV_FB_RESERVED"] == 81559
    empty = telemetry(None)
    del empty.engine.cluster
    assert empty.dcgm_text() == b"" and empty.dcgm_json()["gpus"] == []
