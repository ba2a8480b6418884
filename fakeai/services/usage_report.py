"""The organization usage and costs reports, from the recorder's stored counters.

Buckets are aligned to UTC minute, hour or day boundaries: the first is the one
holding ``start_time`` and each is counted whole. A page holds ``limit`` buckets
(empty ones included, with no results); ``next_page`` continues after them until
``end_time`` (default: now). Results are summed per combination of the
``group_by`` fields (one result per bucket without grouping), after the filters.

Vector store ``usage_bytes`` is a level, not a flow: callers record each change
(plus or minus bytes) and a bucket reports the bytes stored at its end.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

from ..telemetry.usage import RESOLUTIONS, UsageRecorder
from .costs import GIB, Pricer

WIDTHS = dict(RESOLUTIONS)
IDENTITY = ("project_id", "user_id", "api_key_id", "model")


@dataclass(frozen=True, slots=True)
class Kind:
    object: str
    fields: tuple[str, ...]  # result quantities, in OpenAI's order
    group_by: tuple[str, ...]  # allowed group_by values (and the group fields every result shows)
    filters: tuple[str, ...]  # allowed list filters (query names)
    batch_filter: bool = False
    level: bool = False


KINDS: dict[str, Kind] = {
    "completions": Kind(
        "organization.usage.completions.result",
        ("input_tokens", "input_cached_tokens", "input_cache_write_tokens", "input_uncached_tokens",
         "output_tokens", "input_text_tokens", "output_text_tokens", "input_cached_text_tokens",
         "input_audio_tokens", "input_cached_audio_tokens", "output_audio_tokens", "input_image_tokens",
         "input_cached_image_tokens", "output_image_tokens", "num_model_requests"),
        (*IDENTITY, "batch", "service_tier"), ("project_ids", "user_ids", "api_key_ids", "models"),
        batch_filter=True),
    "embeddings": Kind("organization.usage.embeddings.result", ("input_tokens", "num_model_requests"),
                       IDENTITY, ("project_ids", "user_ids", "api_key_ids", "models")),
    "moderations": Kind("organization.usage.moderations.result", ("input_tokens", "num_model_requests"),
                        IDENTITY, ("project_ids", "user_ids", "api_key_ids", "models")),
    "images": Kind("organization.usage.images.result", ("images", "num_model_requests"),
                   (*IDENTITY, "size", "source"),
                   ("sources", "sizes", "project_ids", "user_ids", "api_key_ids", "models")),
    "audio_speeches": Kind("organization.usage.audio_speeches.result", ("characters", "num_model_requests"),
                           IDENTITY, ("project_ids", "user_ids", "api_key_ids", "models")),
    "audio_transcriptions": Kind("organization.usage.audio_transcriptions.result",
                                 ("seconds", "num_model_requests"), IDENTITY,
                                 ("project_ids", "user_ids", "api_key_ids", "models")),
    "vector_stores": Kind("organization.usage.vector_stores.result", ("usage_bytes",), ("project_id",),
                          ("project_ids",), level=True),
    "code_interpreter_sessions": Kind("organization.usage.code_interpreter_sessions.result", ("num_sessions",),
                                      ("project_id",), ("project_ids",)),
    "file_search_calls": Kind("organization.usage.file_searches.result", ("num_requests",),
                              ("project_id", "user_id", "api_key_id", "vector_store_id"),
                              ("project_ids", "user_ids", "api_key_ids", "vector_store_ids")),
    "web_search_calls": Kind("organization.usage.web_searches.result", ("num_model_requests", "num_requests"),
                             (*IDENTITY, "context_level"),
                             ("project_ids", "user_ids", "api_key_ids", "models", "context_levels")),
}
COSTS_GROUP_BY = ("project_id", "line_item", "api_key_id")
COSTS_FILTERS = ("project_ids", "api_key_ids")
# list filter (query name) -> the group field it matches
FILTER_FIELD = {"project_ids": "project_id", "user_ids": "user_id", "api_key_ids": "api_key_id",
                "models": "model", "sizes": "size", "sources": "source", "vector_store_ids": "vector_store_id",
                "context_levels": "context_level"}


@dataclass(slots=True)
class Query:
    start: int  # first bucket of this page (aligned)
    end: int  # exclusive end of the range
    resolution: str
    limit: int
    group_by: tuple[str, ...] = ()
    filters: dict[str, frozenset[str]] = field(default_factory=dict)
    batch: bool | None = None

    @property
    def width(self) -> int:
        return WIDTHS[self.resolution]

    def buckets(self) -> tuple[list[int], int | None]:
        """This page's bucket starts and the next page's first (None: last page)."""
        w, b, out = self.width, self.start, []
        while b < self.end and len(out) < self.limit:
            out.append(b)
            b += w
        return out, (b if b < self.end else None)

    def keeps(self, group: dict) -> bool:
        for name, allowed in self.filters.items():
            if group.get(FILTER_FIELD[name]) not in allowed:
                return False
        return self.batch is None or bool(group.get("batch")) == self.batch


def encode_page(start: int) -> str:
    return "page_" + base64.urlsafe_b64encode(struct.pack(">Q", start)).decode()


def decode_page(token: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token.removeprefix("page_").encode())
        return struct.unpack(">Q", raw)[0] if len(raw) == 8 else None
    except (ValueError, struct.error):
        return None


def _page(buckets: list[int], width: int, results: dict[int, list[dict]], next_start: int | None) -> dict:
    return {"object": "page",
            "data": [{"object": "bucket", "start_time": b, "end_time": b + width, "results": results.get(b, [])}
                     for b in buckets],
            "has_more": next_start is not None,
            "next_page": encode_page(next_start) if next_start is not None else None}


def _sort_key(group: tuple) -> tuple:
    return tuple((v is not None, str(v)) for v in group)


async def usage_page(recorder: UsageRecorder, kind: str, q: Query) -> dict:
    spec = KINDS[kind]
    buckets, next_start = q.buckets()
    sums: dict[int, dict[tuple, dict[str, float]]] = {}
    if buckets:
        w = q.width
        if spec.level:
            await _levels(recorder, kind, q, buckets, sums)
        else:
            for k, group, ts, values in await recorder.rows(q.resolution, buckets[0], buckets[-1] + w):
                if k != kind or not q.keeps(group):
                    continue
                acc = sums.setdefault(ts, {}).setdefault(tuple(group.get(g) for g in q.group_by), {})
                for f, v in values.items():
                    acc[f] = acc.get(f, 0) + v
    results = {}
    for ts, groups in sums.items():
        out = []
        for gkey in sorted(groups, key=_sort_key):
            shown = dict(zip(q.group_by, gkey))
            row = {"object": spec.object, **_quantities(kind, spec, groups[gkey])}
            row.update({g: shown.get(g) for g in spec.group_by})
            out.append(row)
        results[ts] = out
    return _page(buckets, q.width, results, next_start)


def _quantities(kind: str, spec: Kind, v: dict[str, float]) -> dict[str, int]:
    def n(name: str) -> int:
        return round(v.get(name, 0))

    if kind != "completions":
        return {f: n(f) for f in spec.fields}
    inp, cached, out = n("input_tokens"), n("input_cached_tokens"), n("output_tokens")
    audio_in, image_in = n("input_audio_tokens"), n("input_image_tokens")
    audio_out, image_out = n("output_audio_tokens"), n("output_image_tokens")
    return {"input_tokens": inp, "input_cached_tokens": cached,
            "input_cache_write_tokens": n("input_cache_write_tokens"),
            "input_uncached_tokens": inp - cached, "output_tokens": out,
            "input_text_tokens": inp - cached - audio_in - image_in,
            "output_text_tokens": out - audio_out - image_out,
            "input_cached_text_tokens": cached, "input_audio_tokens": audio_in, "input_cached_audio_tokens": 0,
            "output_audio_tokens": audio_out, "input_image_tokens": image_in, "input_cached_image_tokens": 0,
            "output_image_tokens": image_out, "num_model_requests": n("num_model_requests")}


async def _level_before(recorder: UsageRecorder, kind: str, q: Query, t: int) -> dict[tuple, float]:
    """Bytes stored before ``t`` (minute-aligned) per group: whole days, then hours, then minutes."""
    day, hour = t // 86400 * 86400, t // 3600 * 3600
    out: dict[tuple, float] = {}
    for res, a, b in (("1d", 0, day), ("1h", day, hour), ("1m", hour, t)):
        if a >= b:
            continue
        for k, group, _ts, values in await recorder.rows(res, a, b):
            if k == kind and q.keeps(group):
                g = tuple(group.get(f) for f in q.group_by)
                out[g] = out.get(g, 0) + values.get("usage_bytes", 0)
    return out


async def _levels(recorder: UsageRecorder, kind: str, q: Query, buckets: list[int],
                  sums: dict[int, dict[tuple, dict[str, float]]]) -> None:
    level = await _level_before(recorder, kind, q, buckets[0])
    changes: dict[int, dict[tuple, float]] = {}
    for k, group, ts, values in await recorder.rows(q.resolution, buckets[0], buckets[-1] + q.width):
        if k == kind and q.keeps(group):
            g = tuple(group.get(f) for f in q.group_by)
            at = changes.setdefault(ts, {})
            at[g] = at.get(g, 0) + values.get("usage_bytes", 0)
    for b in buckets:
        for g, delta in changes.get(b, {}).items():
            level[g] = level.get(g, 0) + delta
        live = {g: {"usage_bytes": max(v, 0)} for g, v in level.items() if v > 0}
        if live:
            sums[b] = live


async def costs_page(recorder: UsageRecorder, pricer: Pricer, q: Query) -> dict:
    """Daily costs: every kind's usage priced, summed per ``group_by`` of
    project_id / line_item / api_key_id."""
    buckets, next_start = q.buckets()
    sums: dict[int, dict[tuple, list]] = {}
    if buckets:
        start, end = buckets[0], buckets[-1] + q.width

        def add(ts: int, group: dict, items) -> None:
            for line, amount, quantity, unit in items:
                shown = {"project_id": group.get("project_id"), "api_key_id": group.get("api_key_id"),
                         "line_item": line}
                gkey = tuple(shown[g] for g in q.group_by)
                acc = sums.setdefault(ts, {}).setdefault(gkey, [0.0, 0.0, unit])
                acc[0] += amount
                acc[1] += quantity
                if acc[2] != unit:
                    acc[2] = None

        for kind, group, ts, values in await recorder.rows("1d", start, end):
            if kind in KINDS and not KINDS[kind].level and q.keeps(group):
                add(ts, group, pricer.line_items(kind, group, values))
        storage = Query(start, end, "1d", len(buckets), ("project_id",),
                        {k: v for k, v in q.filters.items() if k == "project_ids"})
        stored: dict[int, dict[tuple, dict[str, float]]] = {}
        await _levels(recorder, "vector_stores", storage, buckets, stored)
        if "api_key_ids" not in q.filters:  # storage belongs to a project, not to a key
            for ts, groups in stored.items():
                for (pid,), v in groups.items():
                    add(ts, {"project_id": pid}, pricer.line_items(
                        "vector_stores", {}, {"gib_days": v["usage_bytes"] / GIB}))
    by_line = "line_item" in q.group_by
    results = {}
    for ts, groups in sums.items():
        out = []
        for gkey in sorted(groups, key=_sort_key):
            amount, quantity, unit = groups[gkey]
            shown = dict(zip(q.group_by, gkey))
            out.append({"object": "organization.costs.result",
                        "amount": {"value": round(amount, 10), "currency": "usd"},
                        "line_item": shown.get("line_item"), "project_id": shown.get("project_id"),
                        "api_key_id": shown.get("api_key_id"),
                        "quantity": round(quantity, 6) if by_line else None,
                        "quantity_unit": unit if by_line else None})
        results[ts] = out
    return _page(buckets, q.width, results, next_start)
