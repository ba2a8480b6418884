"""``Telemetry``: every observer of one app's simulated cluster, and what the routes render.

Built once per app from the settings and the engine. It subscribes to the
engine's event bus (finished-request records, KV events) and reads
``engine.cluster`` at scrape time; it never drives either.
"""

from __future__ import annotations

import asyncio
import importlib
import time

from ..config.process import SINGLE, ProcessSlot
from ..lazy import lazy_import
from .dcgm import DcgmExporter
from .dynamo import DynamoMetrics
from .gpu import GpuModel
from .vllm import VllmMetrics, active_blocks

fam = lazy_import("fakeai.telemetry.families")

DEFAULT_MAX_MODEL_LEN = 131072
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


class Telemetry:
    def __init__(self, settings, engine, clock=time.monotonic, process: ProcessSlot = SINGLE) -> None:
        self.settings = settings
        self.engine = engine
        self.process = process
        self.siblings = None  # the other processes' metrics (--workers N)
        self.vllm = VllmMetrics(self._max_model_len)
        self.dynamo = DynamoMetrics()
        self.gpus = GpuModel(clock)
        self.dcgm = DcgmExporter(self.gpus, settings.dcgm_hostname_label, settings.dcgm_pod_labels,
                                 settings.k8s_namespace)
        self.kv_events = None
        self._port = None
        self._registries: dict[str, object] = {}
        self.scrape_allowed = None  # (Authorization) -> bool, set by the app: the port's auth
        self.collectors: list = []  # other areas' collect() callables for /metrics (injected faults)
        events = getattr(engine, "events", None)
        if events is not None:
            events.on_finished(self.vllm.observe)
            events.on_finished(self.dynamo.observe)

    @property
    def cluster(self):
        return getattr(self.engine, "cluster", None)

    def workers(self) -> list:
        cluster = self.cluster
        return list(cluster.workers) if cluster is not None else []

    def _max_model_len(self, model_id: str) -> int:
        model = self.engine.registry.get(model_id)
        return model.context_window if model is not None else DEFAULT_MAX_MODEL_LEN

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        # prometheus_client takes ~50 ms to import: in the background, not in the first scrape
        asyncio.get_running_loop().run_in_executor(None, importlib.import_module, "prometheus_client")
        self.gpus.read(self.workers())  # the baseline later utilisation is measured from
        events = getattr(self.engine, "events", None)
        if s.kv_events_endpoint and events is not None:
            from .kv_events import KVEventPublisher, endpoint_for_rank  # imports zmq: only when enabled

            # each process publishes on its own port (base + index), as vLLM's data-parallel ranks do
            endpoint = endpoint_for_rank(s.kv_events_endpoint, self.process.index)
            self.kv_events = KVEventPublisher(endpoint, self._topic_host(), s.port)
            events.on_kv(self.kv_events.publish)
        if not self.process.single:
            from .siblings import Siblings

            self.siblings = Siblings(self.process, {"all": self._own_text, "dynamo": self._own_dynamo_text,
                                                    "dcgm": self._own_dcgm_text})
            await self.siblings.start()
        if s.dcgm_exporter and self.process.index == 0:  # one listener on the port, serving the sum
            from .port import MetricsPort

            self._port = MetricsPort(s.host, s.dcgm_exporter_port, self.dcgm_exposition, self.scrape_allowed)
            await self._port.start()

    async def stop(self) -> None:
        if self.siblings is not None:
            await self.siblings.stop()
        if self._port is not None:
            await self._port.stop()
        if self.kv_events is not None:
            self.kv_events.close()

    def _topic_host(self) -> str:
        host = self.settings.host
        if host in _WILDCARDS and self.cluster is not None:
            return self.cluster.hostname
        return host

    # -- renderings -----------------------------------------------------------------
    def _registry(self, name: str):
        reg = self._registries.get(name)
        if reg is None:
            collects = {"all": (self._collect_vllm, self._collect_dynamo, *self.collectors),
                        "dynamo": (self._collect_dynamo,)}[name]
            reg = self._registries[name] = fam.registry(*collects)
        return reg

    def _collect_vllm(self):
        # the cluster's live configuration (changed at run time by the admin API), else the settings
        return self.vllm.collect(self.workers(), getattr(self.cluster, "config", self.settings))

    def _collect_dynamo(self):
        return self.dynamo.collect(self.workers())

    async def _own_text(self) -> bytes:
        return await fam.render(self._registry("all")) + self.dcgm_text()

    async def _own_dynamo_text(self) -> bytes:
        return await fam.render(self._registry("dynamo"))

    async def _own_dcgm_text(self) -> bytes:
        return self.dcgm_text()

    async def _exposition(self, kind: str, own) -> bytes:
        text = await own()
        return text if self.siblings is None else await self.siblings.merged(kind, text)

    async def prometheus_text(self) -> bytes:
        """``/metrics``: the vLLM, Dynamo and DCGM series together (of every process)."""
        return await self._exposition("all", self._own_text)

    async def dynamo_text(self) -> bytes:
        return await self._exposition("dynamo", self._own_dynamo_text)

    async def dcgm_exposition(self) -> bytes:
        """``/dcgm/metrics`` and the dcgm-exporter port (of every process)."""
        return await self._exposition("dcgm", self._own_dcgm_text)

    def dynamo_json(self) -> dict:
        return fam.as_json(self._collect_dynamo())

    def dcgm_text(self) -> bytes:
        return self.dcgm.render(self.cluster)

    def dcgm_json(self) -> dict:
        return self.dcgm.as_json(self.cluster)

    def kv_cache_json(self) -> dict:
        """Prefix-cache effectiveness per worker and overall, and the router's decisions."""
        cluster = self.cluster
        workers = self.workers()
        queries = sum(w.prefix_query_tokens for w in workers)
        hits = sum(w.prefix_hit_tokens for w in workers)
        decisions = dict(cluster.router_decisions) if cluster is not None else {}
        return {
            "cache_performance": {
                "hit_rate": hits / queries if queries else 0.0,
                "prefix_query_tokens": queries,
                "tokens_reused": hits,
                "prompt_tokens_computed": sum(w.prompt_tokens_total for w in workers),
                "evicted_blocks": sum(w.evicted_blocks for w in workers),
            },
            "workers": [{
                "worker": w.index,
                "model": w.model,
                "role": w.role,
                "block_size": w.block_size,
                "blocks_total": w.kv_blocks_total,
                "blocks_used": w.kv_blocks_used,
                "blocks_active": active_blocks(w),
                "blocks_free": w.kv_blocks_total - w.kv_blocks_used,
                "usage": w.kv_blocks_used / w.kv_blocks_total if w.kv_blocks_total else 0.0,
                "hit_rate": w.prefix_hit_tokens / w.prefix_query_tokens if w.prefix_query_tokens else 0.0,
                "tokens_reused": w.prefix_hit_tokens,
                "evicted_blocks": w.evicted_blocks,
                "preemptions": w.preemptions,
            } for w in workers],
            "router": {
                "strategy": cluster.router_strategy if cluster is not None else None,
                "decisions": {str(k): v for k, v in sorted(decisions.items())},
                "total": sum(decisions.values()),
            },
        }
