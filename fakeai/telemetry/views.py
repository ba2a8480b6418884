"""Flat views of metrics Scopes: the Summary (compare, ranking, CSV columns; docs/metrics-api.md)."""

from __future__ import annotations

import csv
import io

_DISTS = ("ttft", "itl", "e2e", "queue")
_STATS = ("mean", "p50", "p90", "p95", "p99")
METRICS = ("requests", "completed", "cancelled", "errors", "error_rate", "prompt_tokens", "completion_tokens",
           "cached_tokens", *(f"{d}_{s}" for d in _DISTS for s in _STATS), "stream_tokens_per_s_p50")
# ranked ascending by default (lower is better); the rest descending
LOWER_IS_BETTER = frozenset({"errors", "error_rate", "cancelled", *(f"{d}_{s}" for d in _DISTS for s in _STATS)})


def summary(scope: dict) -> dict:
    """The flat Summary of one Scope."""
    r, t, lat = scope["requests"], scope["tokens"], scope["latency"]
    errors = scope["errors"]["total"]
    out = {"requests": r["total"], "completed": r["completed"], "cancelled": r["cancelled"], "errors": errors,
           "error_rate": errors / r["total"] if r["total"] else 0.0, "prompt_tokens": t["prompt"],
           "completion_tokens": t["completion"], "cached_tokens": t["cached"]}
    for d in _DISTS:
        for s in _STATS:
            out[f"{d}_{s}"] = lat[d][s]
    out["stream_tokens_per_s_p50"] = scope["streaming"]["tokens_per_s"]["p50"]
    return out


def ranking(summaries: dict[str, dict], metric: str, order: str | None = None,
            limit: int | None = None) -> tuple[str, list[dict]]:
    """(order, rows) of the models with a value for ``metric``, best first."""
    order = order or ("asc" if metric in LOWER_IS_BETTER else "desc")
    rows = [(m, s[metric]) for m, s in summaries.items() if s[metric] is not None]
    rows.sort(key=lambda mv: (mv[1] if order == "asc" else -mv[1], mv[0]))
    if limit is not None:
        rows = rows[:limit]
    return order, [{"rank": i + 1, "model": m, "value": v} for i, (m, v) in enumerate(rows)]


def best(summaries: dict[str, dict]) -> dict[str, str]:
    """For each metric, the model that ranks first (metrics no model has a value for are left out)."""
    out = {}
    for metric in METRICS:
        _, rows = ranking(summaries, metric, limit=1)
        if rows:
            out[metric] = rows[0]["model"]
    return out


def to_csv(kind: str, summaries: dict[str, dict]) -> str:
    """One row per scope (``kind``: model, endpoint or key), the Summary columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([kind, *METRICS])
    for name, s in summaries.items():
        w.writerow([name, *("" if s[m] is None else s[m] for m in METRICS)])
    return buf.getvalue()
