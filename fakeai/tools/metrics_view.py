"""Terminal renderings (rich) of the metrics documents: ``fakeai status``, ``metrics`` and ``cache-stats``.

Pure functions from the JSON documents (docs/metrics-api.md) to rich renderables, so the
live view, the one-shot view and the replay of a history file all draw the same tables.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1000:.1f}"


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _num(v, fmt: str = ",.0f") -> str:
    return "-" if v is None else format(v, fmt)


def status_view(h: dict) -> Table:
    t = Table(title=f"fakeai {h.get('version', '?')} — {h.get('status', '?')}", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    store = h.get("store", {})
    c = h.get("cluster", {})
    m = h.get("metrics", {})
    hist = m.get("history", {})
    t.add_row("uptime", f"{h.get('uptime_s', 0):,.1f} s")
    t.add_row("ready", "yes" if h.get("ready") else "warming up")
    t.add_row("store", f"{store.get('backend')} ({'reachable' if store.get('reachable') else 'UNREACHABLE'}"
                       + (f", {store['latency_ms']:.1f} ms" if store.get("latency_ms") is not None else "") + ")")
    t.add_row("cluster", f"{c.get('workers', 0)} workers, {c.get('gpus', 0)} x {c.get('gpu_type', '?')}; "
                         f"running {c.get('running', 0)}, waiting {c.get('waiting', 0)}")
    t.add_row("models", ", ".join(c.get("models", [])) or "-")
    t.add_row("metrics", ("minimal" if m.get("minimal") else "full") +
              f"; history {hist.get('entries', 0)}/{hist.get('length', 0)} every {hist.get('interval_s', 0)} s"
              + (f" -> {hist['file']}" if hist.get("file") else "")
              + f"; {m.get('stream_clients', 0)} stream clients")
    return t


def _throughput(doc: dict) -> Table:
    tp = doc.get("throughput") or {}
    req = doc.get("requests") or {}
    streaming = doc.get("streaming") or {}
    t = Table(title=f"fakeai {doc.get('version', '?')} — up {doc.get('uptime_s', 0):,.0f} s"
                    + (" (metrics-minimal)" if doc.get("minimal") else ""))
    for col in ("requests/s", "output tok/s", "input tok/s", "errors/s", "requests", "failed", "in flight",
                "active streams"):
        t.add_column(col, justify="right")
    t.add_row(_num(tp.get("requests_per_s"), ",.1f"), _num(tp.get("completion_tokens_per_s")),
              _num(tp.get("prompt_tokens_per_s")), _num(tp.get("errors_per_s"), ",.2f"), _num(req.get("total")),
              _num(req.get("failed")), _num(req.get("in_flight")), _num(streaming.get("active")))
    return t


def _latency(doc: dict) -> Table:
    lat = doc.get("latency") or {}
    recent = doc.get("recent") or {}
    t = Table(title="latency (ms)")
    for col in ("", "count", "mean", "p50", "p90", "p95", "p99", f"p50 last {recent.get('window_s', 60):.0f}s"):
        t.add_column(col, justify="right")
    for key, label in (("ttft", "TTFT"), ("itl", "ITL"), ("e2e", "end to end"), ("queue", "queue")):
        q = lat.get(key) or recent.get(key) or {}
        r = recent.get(key) or {}
        t.add_row(label, _num(q.get("count")), _ms(q.get("mean")), _ms(q.get("p50")), _ms(q.get("p90")),
                  _ms(q.get("p95")), _ms(q.get("p99")), _ms(r.get("p50")))
    return t


def _models(doc: dict) -> Table | None:
    models = doc.get("models")
    if not models:
        return None
    t = Table(title="models")
    for col in ("model", "requests", "errors", "in flight", "input tok", "output tok", "TTFT p50", "ITL p50",
                "e2e p50", "e2e p99"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, s in models.items():
        lat = s["latency"]
        t.add_row(name, _num(s["requests"]["total"]), _num(s["errors"]["total"]), _num(s["requests"].get("in_flight")),
                  _num(s["tokens"]["prompt"]), _num(s["tokens"]["completion"]), _ms(lat["ttft"]["p50"]),
                  _ms(lat["itl"]["p50"]), _ms(lat["e2e"]["p50"]), _ms(lat["e2e"]["p99"]))
    return t


def _workers(doc: dict) -> Table | None:
    cluster = doc.get("cluster")
    if not cluster or not cluster.get("workers"):
        return None
    gpus = doc.get("gpus") or {}
    t = Table(title=f"workers (router: {cluster['router']['strategy']})")
    for col in ("worker", "model", "role", "running", "waiting", "batch", "KV used", "hit rate", "routed",
                "GPU util", "power W", "temp °C"):
        t.add_column(col, justify="left" if col in ("model", "role") else "right")
    for idx, w in cluster["workers"].items():
        gs = [gpus[g] for g in w.get("gpus", ()) if g in gpus]
        util = sum(g["util"] for g in gs) / len(gs) if gs else None
        power = sum(g["power_w"] for g in gs) if gs else None
        temp = max(g["temp_c"] for g in gs) if gs else None
        batch = w["batch"]
        t.add_row(idx, w["model"], w["role"], _num(w["running"]), _num(w["waiting"]),
                  f"{batch['prefilling']}p+{batch['decoding']}d", _pct(w["kv"]["usage"]), _pct(w["kv"]["hit_rate"]),
                  _num(w["router_decisions"]), _pct(util), _num(power, ",.0f"), _num(temp, ".1f"))
    return t


def metrics_view(doc: dict) -> Group:
    parts = [_throughput(doc)]
    if doc.get("latency") or doc.get("recent"):
        parts.append(_latency(doc))
    for part in (_models(doc), _workers(doc)):
        if part is not None:
            parts.append(part)
    errors = (doc.get("errors") or {}).get("by_code")
    if errors:
        parts.append(Text("errors by code: " + ", ".join(f"{k} {v}" for k, v in errors.items())))
    faults = doc.get("faults") or {}
    if faults.get("total"):
        parts.append(Text("injected faults: " + ", ".join(f"{k} {v}" for k, v in faults["by_type"].items())))
    return Group(*parts)


def cache_view(kv: dict) -> Group:
    perf = kv.get("cache_performance", {})
    t = Table(title=f"KV cache — hit rate {_pct(perf.get('hit_rate'))}, {perf.get('tokens_reused', 0):,} tokens "
                    f"reused, {perf.get('evicted_blocks', 0):,} blocks evicted")
    for col in ("worker", "model", "role", "block", "used", "active", "free", "total", "usage", "hit rate",
                "tokens reused", "evicted", "preempted"):
        t.add_column(col, justify="left" if col in ("model", "role") else "right")
    for w in kv.get("workers", []):
        t.add_row(str(w["worker"]), w["model"], w["role"], str(w["block_size"]), _num(w["blocks_used"]),
                  _num(w["blocks_active"]), _num(w["blocks_free"]), _num(w["blocks_total"]), _pct(w["usage"]),
                  _pct(w["hit_rate"]), _num(w["tokens_reused"]), _num(w["evicted_blocks"]), _num(w["preemptions"]))
    router = kv.get("router", {})
    decisions = ", ".join(f"worker {k}: {v}" for k, v in router.get("decisions", {}).items()) or "none yet"
    return Group(t, Text(f"router ({router.get('strategy')}): {decisions}"))
