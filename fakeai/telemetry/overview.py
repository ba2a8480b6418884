"""``Overview``: the ``/metrics/json`` document (docs/metrics-api.md), built from the request
statistics, the live cluster, the GPU model, the fault counters and the rate-limit state.

One object per app (``app.state.metrics``); it owns the statistics (``stats.Stats``, absent in
metrics-minimal mode), the history (``history.History``) and the WebSocket fan-out
(``stream.StreamHub``). It only reads: nothing here drives the engine.
"""

from __future__ import annotations

import time

from ..engine.cluster.sequence import DECODE, PINNED, PREFILL
from .history import History
from .stats import Agg, Stats
from .stream import StreamHub

STAT_FAMILIES = ("requests", "tokens", "latency", "recent", "errors", "streaming", "throughput", "endpoints",
                 "models", "keys")
LIVE_FAMILIES = ("cluster", "gpus", "faults", "rate_limits")
FAMILIES = STAT_FAMILIES + LIVE_FAMILIES
_GLOBAL = ("requests", "tokens", "latency", "recent", "errors", "streaming")


class UnknownFamily(ValueError):
    pass


def parse_families(value) -> tuple[str, ...] | None:
    """A families filter (comma-separated text or a list) checked against FAMILIES; None = all."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not all(isinstance(n, str) for n in names):
        raise UnknownFamily("families must be strings")
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise UnknownFamily(f"Unknown metrics family '{unknown[0]}'. Families: {', '.join(FAMILIES)}.")
    return tuple(dict.fromkeys(names)) or None


class Overview:
    def __init__(self, state) -> None:
        self.state = state
        s = state.settings
        self.minimal = s.metrics_minimal
        self.stats = None if self.minimal else Stats(state.usage.keys)
        self.started = time.time()
        self._t0 = time.monotonic()
        self.history = History(self, 0.0 if self.minimal else s.metrics_history_interval_s,
                               s.metrics_history_length, None if self.minimal else s.metrics_history_file)
        self.stream = StreamHub(self)
        if self.stats is not None:
            state.engine.events.on_finished(self.stats.observe)
            state.telemetry.collectors.append(self.stats.collect)  # fakeai_http_* in /metrics

    async def start(self) -> None:
        self.history.start()

    async def stop(self) -> None:
        await self.stream.close_all()
        await self.history.stop()

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._t0

    # -- the document ---------------------------------------------------------------------
    def document(self, families: tuple[str, ...] | None = None, models: tuple[str, ...] | None = None) -> dict:
        """The /metrics/json document, only ``families`` (None: all), restricted to ``models``."""
        want = set(families or FAMILIES)
        if self.minimal:
            want -= set(STAT_FAMILIES)
        doc = {"object": "metrics", "time": time.time(), "uptime_s": round(self.uptime_s, 3),
               "version": self.state.version, "minimal": self.minimal}
        if want & set(STAT_FAMILIES):
            self._stat_families(doc, want, models)
        workers = self._workers(models)
        if "cluster" in want:
            doc["cluster"] = self._cluster(workers)
        if "gpus" in want:
            doc["gpus"] = self._gpus(workers)
        if "faults" in want:
            doc["faults"] = self._faults()
        if "rate_limits" in want:
            doc["rate_limits"] = self._rate_limits()
        return doc

    def _stat_families(self, doc: dict, want: set, models) -> None:
        st = self.stats
        m = st.merged("endpoints" in want, "models" in want, "keys" in want)
        if want & set(_GLOBAL):
            whole = st.scope_doc(m.all, st.api_in_flight(), st.api_streams(), True)
            for name in _GLOBAL:
                if name in want:
                    doc[name] = whole[name]
        if "throughput" in want:
            doc["throughput"] = st.throughput()
        if "endpoints" in want:
            doc["endpoints"] = {e: st.scope_doc(a, st.in_flight.get(e, 0), st.streams.get(("endpoint", e), 0), False)
                                for e, a in sorted(m.endpoints.items())}
        if "models" in want:
            doc["models"] = {name: self.model_doc(name, a) for name, a in sorted(m.models.items())
                             if models is None or name in models}
        if "keys" in want:
            # a key is known only once its request is checked: no in-flight count
            doc["keys"] = {k: st.scope_doc(a, None, st.streams.get(("key", k), 0), False)
                           for k, a in sorted(m.keys.items())}

    def models(self) -> dict[str, Agg]:
        """Every model's merged statistics."""
        return self.stats.merged(False, True, False).models

    def model_doc(self, model: str, a: Agg | None = None) -> dict:
        """A model's Scope: its requests in flight and active streams are its workers' (engine view)."""
        a = a if a is not None else Agg()
        ws = [w for w in self._workers(None) if w.model == model]
        in_flight = sum(w.running + w.waiting for w in ws)
        streams = sum(1 for w in ws for seq in (*w.sched.running, *w.sched.waiting) if seq.stream)
        return self.stats.scope_doc(a, in_flight, streams, True)

    def _workers(self, models) -> list:
        cluster = getattr(self.state.engine, "cluster", None)
        ws = list(cluster.workers) if cluster is not None else []
        return ws if models is None else [w for w in ws if w.model in models]

    def _cluster(self, workers: list) -> dict:
        c = self.state.engine.cluster
        total = sum(w.kv_blocks_total for w in workers)
        used = sum(w.kv_blocks_used for w in workers)
        active = sum(w.kv_blocks_active for w in workers)
        queries = sum(w.prefix_query_tokens for w in workers)
        hits = sum(w.prefix_hit_tokens for w in workers)
        decisions = {str(k): v for k, v in sorted(c.router_decisions.items())}
        return {
            "running": sum(w.running for w in workers), "waiting": sum(w.waiting for w in workers),
            "kv": {"blocks_total": total, "blocks_used": used, "blocks_active": active,
                   "usage": active / total if total else 0.0, "hit_rate": hits / queries if queries else 0.0},
            "router": {"strategy": c.router_strategy, "decisions": decisions, "total": sum(decisions.values())},
            "workers": {str(w.index): _worker(w, c.router_decisions.get(w.index, 0)) for w in workers},
        }

    def _gpus(self, workers: list) -> dict:
        out = {}
        for w, g, r in self.state.telemetry.gpus.read(workers):
            out[str(g.index)] = {
                "uuid": g.uuid, "name": g.spec.name, "worker": w.index, "model": w.model,
                "util": round(r.util, 6), "power_w": round(r.power_w, 3), "temp_c": round(r.gpu_temp_c, 3),
                "mem_temp_c": round(r.mem_temp_c, 3), "memory_used_mib": r.fb_used_mib,
                "memory_total_mib": r.fb_total_mib, "sm_clock_mhz": r.sm_clock_mhz,
                "energy_j": round(r.energy_mj / 1000.0, 3)}
        return out

    def _faults(self) -> dict:
        faults = getattr(self.state, "faults", None)
        counts = faults.counts() if faults is not None else {}
        by_type: dict[str, int] = {}
        by_endpoint: dict[str, int] = {}
        for (kind, endpoint), n in sorted(counts.items()):
            by_type[kind] = by_type.get(kind, 0) + n
            by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + n
        return {"active": bool(getattr(faults, "active", False)), "total": sum(counts.values()),
                "by_type": by_type, "by_endpoint": by_endpoint}

    def _rate_limits(self) -> dict:
        limiter = self.state.security.limiter
        p = limiter.policy
        st = self.stats
        return {"enabled": limiter.enabled,
                "policy": {"tier": p.tier, "rpm": p.rpm, "tpm": p.tpm, "rpd": p.rpd, "tpd": p.tpd,
                           "quantum_s": p.quantum_s},
                "rejected": st.rate_limited if st is not None else 0,
                "keys": st.limits_view() if st is not None else {}}


def _worker(w, decisions: int) -> dict:
    running = w.sched.running
    step = w.current
    total, used = w.kv_blocks_total, w.kv_blocks_used
    active = w.kv_blocks_active
    queries = w.prefix_query_tokens
    return {
        "model": w.model, "role": w.role, "status": "draining" if w.draining else "serving", "tp": w.tp,
        "running": w.running, "waiting": w.waiting, "max_num_seqs": w.max_num_seqs,
        "batch": {"prefilling": sum(1 for s in running if s.state == PREFILL),
                  "decoding": sum(1 for s in running if s.state in (DECODE, PINNED)),
                  "step_ms": round(step.duration * 1000, 3) if step else None},
        "kv": {"block_size": w.block_size, "blocks_total": total, "blocks_used": used, "blocks_active": active,
               "usage": active / total if total else 0.0,
               "hit_rate": w.prefix_hit_tokens / queries if queries else 0.0, "evicted_blocks": w.evicted_blocks},
        "requests_finished": w.requests_finished, "preemptions": w.preemptions, "router_decisions": decisions,
        "gpus": [str(g.index) for g in w.gpus],
    }
