"""dcgm-exporter's default counter set over the simulated GPUs (values from ``gpu.GpuModel``).

Rendered here rather than through prometheus_client because dcgm-exporter's
counters carry no ``_total`` suffix and its labels come in a fixed order:
``gpu, UUID, pci_bus_id, device, modelName, Hostname, DCGM_FI_DRIVER_VERSION``,
then, with Kubernetes pod mapping, ``container, namespace, pod``.
"""

from __future__ import annotations

from collections.abc import Callable

from .gpu import DRIVER_VERSION, GpuModel, Reading

# (name, type, help, value, integer) in etc/default-counters.csv order
FIELDS: tuple[tuple[str, str, str, Callable[[Reading], float], bool], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", lambda r: r.sm_clock_mhz, True),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", lambda r: r.mem_clock_mhz, True),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", lambda r: r.mem_temp_c, True),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", lambda r: r.gpu_temp_c, True),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", lambda r: r.power_w, False),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).",
     lambda r: r.energy_mj, True),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", lambda r: 0, True),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", lambda r: 100.0 * r.util, True),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", lambda r: 100.0 * r.dram_active,
     True),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", lambda r: 0, True),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", lambda r: 0, True),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", lambda r: 0, True),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", lambda r: r.fb_free_mib, True),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", lambda r: r.fb_used_mib, True),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).",
     lambda r: r.fb_reserved_mib, True),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter",
     "Total number of NVLink bandwidth counters for all lanes.", lambda r: r.nvlink_bytes, True),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status", lambda r: 0, True),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for uncorrectable errors", lambda r: 0, True),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors",
     lambda r: 0, True),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed", lambda r: 0, True),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.",
     lambda r: r.util, False),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.",
     lambda r: r.tensor_active, False),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", ("Ratio of cycles the device memory interface is active "
     "sending or receiving data."), lambda r: r.dram_active, False),
    ("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", ("The rate of data transmitted over the PCIe bus - including "
     "both protocol headers and data payloads - in bytes per second."), lambda r: r.pcie_tx_bps, True),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", ("The rate of data received over the PCIe bus - including "
     "both protocol headers and data payloads - in bytes per second."), lambda r: r.pcie_rx_bps, True),
)


def pod_name(worker) -> str:
    """The simulated Kubernetes pod of a worker: ``fakeai-worker-0``, ``fakeai-prefill-worker-1``..."""
    role = "" if worker.role == "both" else worker.role + "-"
    return f"fakeai-{role}worker-{worker.index}"


class DcgmExporter:
    def __init__(self, gpus: GpuModel, hostname_label: str = "Hostname", pod_labels: bool = False,
                 namespace: str = "default") -> None:
        self.gpus = gpus
        self.hostname_label = hostname_label
        self.pod_labels = pod_labels
        self.namespace = namespace

    def _labels(self, hostname: str, w, g) -> list[tuple[str, str]]:
        labels = [("gpu", str(g.index)), ("UUID", g.uuid), ("pci_bus_id", g.pci_bus_id),
                  ("device", f"nvidia{g.index}"), ("modelName", g.spec.name),
                  (self.hostname_label, hostname), ("DCGM_FI_DRIVER_VERSION", DRIVER_VERSION)]
        if self.pod_labels:
            labels += [("container", "main"), ("namespace", self.namespace), ("pod", pod_name(w))]
        return labels

    def render(self, cluster) -> bytes:
        """The exposition text, as dcgm-exporter serves it."""
        if cluster is None:
            return b""
        readings = self.gpus.read(cluster.workers)
        prefixes = ["{" + ",".join(f'{k}="{_escape(v)}"' for k, v in self._labels(cluster.hostname, w, g))
                    + "} " for w, g, _ in readings]
        lines = []
        for name, kind, doc, value, integer in FIELDS:
            lines.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
            for prefix, (_, _, r) in zip(prefixes, readings):
                v = value(r)
                lines.append(f"{name}{prefix}{round(v) if integer else round(v, 3)}\n")
        return "".join(lines).encode()

    def as_json(self, cluster) -> dict:
        """Per GPU: its labels and every field's value (the same read as the text)."""
        if cluster is None:
            return {"hostname": None, "driver_version": DRIVER_VERSION, "gpus": []}
        gpus = []
        for w, g, r in self.gpus.read(cluster.workers):
            gpus.append({
                "labels": dict(self._labels(cluster.hostname, w, g)),
                "worker": w.index,
                "role": w.role,
                "metrics": {name: (round(value(r)) if integer else round(value(r), 3))
                            for name, _, _, value, integer in FIELDS},
            })
        return {"hostname": cluster.hostname, "driver_version": DRIVER_VERSION, "gpus": gpus}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
