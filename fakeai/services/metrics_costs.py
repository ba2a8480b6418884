"""The cost tracker of ``/metrics/costs``: recorded usage since a moment, priced with the catalog.

The same usage counters and the same prices as ``/v1/organization/costs`` (``costs.Pricer``:
uncached input, cached input at its discount, output, batch lines at half), summed per model,
API key and line item. Usage is read in whole buckets: per minute for the last six hours, per
hour up to a week, per day beyond.
"""

from __future__ import annotations

import time

from ..telemetry.usage import UsageRecorder
from .costs import Pricer
from .usage_report import KINDS

_RESOLUTIONS = ((6 * 3600, "1m", 60), (7 * 86400, "1h", 3600), (None, "1d", 86400))


async def costs_since(recorder: UsageRecorder, pricer: Pricer, since: float) -> dict:
    now = int(time.time())
    span = max(now - int(since), 0)
    res, width = next((r, w) for limit, r, w in _RESOLUTIONS if limit is None or span <= limit)
    start = int(since) // width * width
    by_model: dict[str, dict] = {}
    by_key: dict[str, float] = {}
    by_line: dict[str, dict] = {}
    total = 0.0
    for kind, group, _ts, values in await recorder.rows(res, start, now + width):
        k = KINDS.get(kind)
        if k is None or k.level:  # stored bytes (vector stores) are not a per-request cost
            continue
        for line, amount, quantity, unit in pricer.line_items(kind, group, values):
            total += amount
            model = by_model.setdefault(group.get("model") or "", {"amount": 0.0, "line_items": {}})
            model["amount"] += amount
            model["line_items"][line] = model["line_items"].get(line, 0.0) + amount
            key = group.get("api_key_id") or "anonymous"
            by_key[key] = by_key.get(key, 0.0) + amount
            item = by_line.setdefault(line, {"amount": 0.0, "quantity": 0.0, "unit": unit})
            item["amount"] += amount
            item["quantity"] += quantity
    return {"object": "metrics.costs", "since": start, "resolution": res, "currency": "usd",
            "total": round(total, 10),
            "by_model": {m: {"amount": round(v["amount"], 10),
                             "line_items": {li: round(a, 10) for li, a in sorted(v["line_items"].items())}}
                         for m, v in sorted(by_model.items())},
            "by_key": {k: round(v, 10) for k, v in sorted(by_key.items())},
            "by_line_item": {li: {"amount": round(v["amount"], 10), "quantity": v["quantity"], "unit": v["unit"]}
                             for li, v in sorted(by_line.items())}}
