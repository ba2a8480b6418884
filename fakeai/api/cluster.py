"""The simulated cluster, seen and steered: ``GET /cluster``, ``PATCH /admin/cluster`` and
vLLM's ``POST /reset_prefix_cache`` (docs/cluster.md). (``GET /kv-cache/metrics`` is the
telemetry's, in ``metrics.py``.)

``PATCH /admin/cluster`` takes the options' own names and types (as in a config file):
worker count, prefill workers, ``max_num_seqs``, pinned TTFT/ITL and the router's
strategy, weight and temperature. The same options change through ``PATCH
/admin/config``; every change is logged and listed under ``changes`` in ``/cluster``.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, ValidationError, create_model

from ..config.settings import Settings
from ..engine.cluster.sequence import DECODE, PINNED, PREFILL
from . import admin
from .body import read_json
from .common import dumps, json_response
from .errors import APIError, validation_error

log = logging.getLogger("fakeai")
router = APIRouter(tags=["cluster"])

CLUSTER_OPTIONS = ("workers_per_model", "prefill_workers", "max_num_seqs", "router_strategy",
                   "router_overlap_weight", "router_temperature")
TIMING_OPTIONS = ("ttft_ms", "itl_ms")
_MIB = 1 << 20


@admin.runtime_option(*CLUSTER_OPTIONS)
def _apply(state, changes: dict) -> None:
    cluster = state.engine.cluster
    for name, value in changes.items():
        before = getattr(cluster.config, name)
        cluster.reconfigure(name, value)
        cluster.changes.append({"time": time.time(), "option": name, "from": before, "to": value})


# -- reading --------------------------------------------------------------------------------

def _gpu(g, w) -> dict:
    kv = w.kv_blocks_used * w.block_bytes
    return {"index": g.index, "uuid": g.uuid, "pci_bus_id": g.pci_bus_id, "name": g.spec.name,
            "memory_total_mib": g.spec.memory_mib, "memory_used_mib": (w.weights_bytes + kv) // _MIB,
            "weights_mib": w.weights_bytes // _MIB, "kv_cache_mib": kv // _MIB,
            "tdp_w": g.spec.tdp_w, "idle_w": g.spec.idle_w}


def _batch(w) -> dict:
    running = w.sched.running
    step = w.current
    return {"prefilling": sum(1 for s in running if s.state == PREFILL),
            "decoding": sum(1 for s in running if s.state in (DECODE, PINNED)),
            "step_ms": round(step.duration * 1000, 3) if step else None,
            "step_decode_seqs": step.seqs if step else 0,
            "step_prefill_tokens": step.prefill_tokens if step else 0}


def _kv(w) -> dict:
    total, used = w.kv_blocks_total, w.kv_blocks_used
    return {"block_size": w.block_size, "block_bytes": w.block_bytes, "blocks_total": total,
            "blocks_used": used, "blocks_free": total - used, "blocks_active": w.kv_blocks_active,
            "blocks_cached": len(w.kv.tree), "usage": round(used / total, 6) if total else 0.0}


def _worker(w) -> dict:
    return {
        "index": w.index, "model": w.model, "role": w.role, "tp": w.tp,
        "status": "draining" if w.draining else "serving",
        "running": w.running, "waiting": w.waiting, "max_num_seqs": w.max_num_seqs,
        "batch": _batch(w), "kv_cache": _kv(w),
        "counters": {"steps": w.steps, "busy_seconds": round(w.busy_seconds, 6),
                     "prompt_tokens": w.prompt_tokens_total, "generation_tokens": w.generation_tokens_total,
                     "prefix_query_tokens": w.prefix_query_tokens, "prefix_hit_tokens": w.prefix_hit_tokens,
                     "preemptions": w.preemptions, "evicted_blocks": w.evicted_blocks,
                     "requests_finished": w.requests_finished},
        "gpus": [_gpu(g, w) for g in w.gpus],
    }


@router.get("/cluster")
async def get_cluster(request: Request):
    engine = request.app.state.engine
    c = engine.cluster
    cfg = {name: getattr(c.config, name) for name in c.config.__slots__}
    cfg.update(engine.timing())
    return json_response(dumps({
        "object": "cluster", "hostname": c.hostname, "config": cfg,
        "running": c.running, "waiting": c.waiting,
        "router": {"strategy": c.router_strategy, "overlap_weight": c.router.overlap_weight,
                   "temperature": c.router.temperature, "decisions": _decisions(c)},
        "workers": [_worker(w) for w in c.workers],
        "changes": list(c.changes),
    }))


def _decisions(c) -> dict[str, int]:
    return {str(k): v for k, v in sorted(c.router_decisions.items())}


# -- steering -------------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _patch_model(names: tuple[str, ...]):
    fields = {n: (Settings.model_fields[n].annotation, Settings.model_fields[n]) for n in names}
    return create_model("ClusterPatch", __config__=ConfigDict(extra="forbid", strict=True), **fields)


@router.patch("/admin/cluster")
async def patch_cluster(request: Request):
    state = request.app.state
    raw = await read_json(request)
    allowed = CLUSTER_OPTIONS + TIMING_OPTIONS
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise APIError(400, f"Unknown cluster option: '{unknown[0]}'. Options: {', '.join(allowed)}.",
                       param=unknown[0], code="unknown_parameter")
    if not raw:
        raise APIError(400, f"Nothing to change. Options: {', '.join(allowed)}.", code="invalid_value")
    try:
        values: dict[str, Any] = _patch_model(tuple(sorted(raw))).model_validate(raw).model_dump()
    except ValidationError as e:
        raise validation_error(e) from None
    engine = state.engine
    timing = {k: v for k, v in values.items() if k in TIMING_OPTIONS}
    if timing:
        before = engine.timing()
        engine.reconfigure(**timing)
        for name, value in timing.items():
            engine.cluster.changes.append({"time": time.time(), "option": name, "from": before[name], "to": value})
    _apply(state, {k: v for k, v in values.items() if k in CLUSTER_OPTIONS})
    overrides = getattr(state, "overrides", None)
    if overrides is not None:
        overrides.update(values)  # GET /admin/config shows them too
    for change in list(engine.cluster.changes)[-len(values):]:
        log.info("cluster: %s changed from %s to %s", change["option"], change["from"], change["to"])
    return await get_cluster(request)


@router.post("/reset_prefix_cache")
async def reset_prefix_cache(request: Request):
    """vLLM's endpoint: drop every cached block no running request uses."""
    n = request.app.state.engine.cluster.reset_prefix_cache()
    log.info("cluster: prefix cache reset (%d blocks dropped)", n)
    return json_response(dumps({"object": "prefix_cache.reset", "blocks_dropped": n}))
