"""Request statistics per endpoint, model and API key, for ``/metrics/json`` (docs/metrics-api.md).

Two observations feed them, neither of which drives anything:

* ``begin(scope)`` (called by ``RequestMeta`` for every HTTP request) returns a ``Trace`` that
  sees the response start (status, event stream or not) and, for an error, its envelope, and
  counts the request when it ends. While the request runs, the trace is the current one
  (a context variable), so that
* ``observe(record)`` (an engine event-bus listener, like the vLLM and Dynamo series) knows the
  endpoint and API key of the request a finished record belongs to, and the trace learns its model.

Each request updates one cell, the ``Agg`` of its (endpoint, model, key); the scopes shown (all
API traffic, one endpoint, one model, one key) are merged from the cells when read, so the
serving path pays for one update whatever the number of views. Every number is a counter or a
bounded sketch (``sketch.py``) and label values are capped, so memory does not grow with traffic.
"""

from __future__ import annotations

import time
from collections import deque
from contextvars import ContextVar

import orjson

from ..lazy import lazy_import
from ..security.faults import endpoint_of
from .sketch import Dists, Sketch, Window, index

MAX_LABELS = 256  # endpoints, models and keys each kept apart; later ones count as "other"
MAX_CELLS = 4096
OTHER = "other"
ANONYMOUS = "anonymous"
RATE_WINDOW_S = 10.0
_EVENT_STREAM = b"text/event-stream"
_RL_PREFIX = b"x-ratelimit-"
fam = lazy_import("fakeai.telemetry.families")
_current: ContextVar[Trace | None] = ContextVar("fakeai_metrics_trace", default=None)
_COUNTERS = ("total", "succeeded", "failed", "errors", "completed", "cancelled", "batch", "prompt", "completion",
             "cached", "s_completed", "s_cancelled")


class Agg:
    """The counters and sketches of one cell, or of a scope merged from cells."""

    __slots__ = ("batch", "by_status", "cached", "cancelled", "completed", "completion", "err_code", "err_type",
                 "errors", "failed", "finish", "lat", "prompt", "recent", "s_cancelled", "s_completed", "s_itl",
                 "s_tps", "s_ttft", "succeeded", "total")

    def __init__(self) -> None:
        self.total = self.succeeded = self.failed = self.errors = 0
        self.by_status: dict[int, int] = {}
        self.err_type: dict[str, int] = {}
        self.err_code: dict[str, int] = {}
        self.completed = self.cancelled = self.batch = 0
        self.finish: dict[str, int] = {}
        self.prompt = self.completion = self.cached = 0
        self.lat = Dists()
        self.recent = Window()  # the last minute
        self.s_completed = self.s_cancelled = 0
        self.s_ttft, self.s_itl, self.s_tps = Sketch(), Sketch(), Sketch()

    def http_end(self, status: int, etype: str | None, ecode: str | None) -> None:
        self.total += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status >= 400:
            self.failed += 1
            self.errors += 1
            if etype:
                self.err_type[etype] = self.err_type.get(etype, 0) + 1
            if ecode:
                self.err_code[ecode] = self.err_code.get(ecode, 0) + 1
        else:
            self.succeeded += 1

    def merge(self, other: Agg, recent: bool) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("by_status", "err_type", "err_code", "finish"):
            mine = getattr(self, name)
            for k, v in getattr(other, name).items():
                mine[k] = mine.get(k, 0) + v
        self.lat.merge(other.lat)
        self.s_ttft.merge(other.s_ttft)
        self.s_itl.merge(other.s_itl)
        self.s_tps.merge(other.s_tps)
        if recent:
            self.recent.merge(other.recent)


class Trace:
    """One HTTP request being answered."""

    __slots__ = ("api", "ecode", "endpoint", "error", "etype", "key", "model", "scope", "stats", "status",
                 "stream", "token")

    def __init__(self, stats: Stats, scope, endpoint: str, api: bool) -> None:
        self.stats, self.scope, self.endpoint, self.api = stats, scope, endpoint, api
        self.status = 0
        self.error = self.stream = False
        self.etype = self.ecode = None
        self.model: str | None = None
        self.key: str | None = None
        self.token = _current.set(self)

    def key_label(self) -> str | None:
        """The API key's id (known once the guard has run), capped; "" for none (cached)."""
        if self.key is None:
            kid = self.stats.key_id(self.scope)
            self.key = self.stats.label(self.stats.key_names, kid) if kid is not None else ""
        return self.key or None

    def start(self, message) -> None:
        """The response's ``http.response.start``."""
        status = self.status = message["status"]
        if status >= 400:
            self.error = True
        elif status == 200:
            for k, v in message.get("headers", ()):
                if k == b"content-type":
                    if v.startswith(_EVENT_STREAM):
                        self.stream = True
                        self.stats.stream_started(self, 1)
                    break

    def body(self, message) -> None:
        """The first body message of an error response: its envelope's type and code."""
        self.error = False
        try:
            doc = orjson.loads(message.get("body", b""))
        except orjson.JSONDecodeError:
            return
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            t, c = err.get("type"), err.get("code")
            self.etype = t if isinstance(t, str) else None
            self.ecode = c if isinstance(c, str) else None

    def refused(self, status: int) -> None:
        """Answered before the app ran (413 from the body limit)."""
        self.status = status
        self.end()

    def end(self, failed: bool = False) -> None:
        st = self.stats
        _current.reset(self.token)
        status = self.status or (500 if failed else 499)  # 499: the client left before any answer
        st.in_flight[self.endpoint] -= 1
        st.cell(self.endpoint, self.model, self.key_label()).http_end(status, self.etype, self.ecode)
        if self.stream:
            st.stream_started(self, -1)
        sec = self.scope["state"].get("security")
        if sec is not None and (sec.headers or status == 429):
            st.rate_limit_seen(self, sec.headers, status)


class Merged:
    """Scopes merged from the cells at one moment."""

    __slots__ = ("all", "endpoints", "keys", "models")

    def __init__(self) -> None:
        self.all = Agg()
        self.endpoints: dict[str, Agg] = {}
        self.models: dict[str, Agg] = {}
        self.keys: dict[str, Agg] = {}


class Stats:
    def __init__(self, key_ids, clock=time.monotonic) -> None:
        self._key_ids = key_ids  # fakeai.telemetry.keyids.KeyIds (the usage recorder's)
        self.clock = clock
        self.cells: dict[tuple[str, str | None, str | None], Agg] = {}
        self.endpoint_names: dict[str, bool] = {}  # endpoint -> API traffic (/v1/...)
        self.model_names: dict[str, bool] = {}
        self.key_names: dict[str, bool] = {}
        self.in_flight: dict[str, int] = {}  # by endpoint
        self.streams: dict[tuple[str, str], int] = {}  # active event streams by ("endpoint"|"key", name)
        self.limits: dict[str, dict] = {}  # key id -> the last rate-limit state it saw
        self.rate_limited = 0
        self._paths: dict[str, tuple[str, bool]] = {}
        self._rates: deque[tuple] = deque()

    # -- labels and cells ---------------------------------------------------------------
    @staticmethod
    def label(names: dict, name: str, value: bool = True) -> str:
        if name not in names:
            if len(names) >= MAX_LABELS:
                name = OTHER
            names.setdefault(name, value)
        return name

    def cell(self, endpoint: str, model: str | None, key: str | None) -> Agg:
        k = (endpoint, model, key)
        a = self.cells.get(k)
        if a is None:
            if len(self.cells) >= MAX_CELLS:
                k = (endpoint, OTHER, OTHER)
                a = self.cells.get(k)
                if a is not None:
                    return a
            a = self.cells[k] = Agg()
        return a

    def key_id(self, scope) -> str | None:
        return self._key_ids.of(scope)[0]

    # -- HTTP -------------------------------------------------------------------------
    def begin(self, scope) -> Trace:
        path = scope["path"]
        hit = self._paths.get(path)
        if hit is None:
            if len(self._paths) >= 4096:
                self._paths.clear()
            api = path.startswith("/v1/")
            hit = self._paths[path] = (self.label(self.endpoint_names, endpoint_of(path), api), api)
        endpoint = hit[0]
        self.in_flight[endpoint] = self.in_flight.get(endpoint, 0) + 1
        return Trace(self, scope, endpoint, hit[1])

    def stream_started(self, tr: Trace, delta: int) -> None:
        streams = self.streams
        for k in (("endpoint", tr.endpoint), ("key", tr.key_label())):
            if k[1] is not None:
                streams[k] = streams.get(k, 0) + delta

    def rate_limit_seen(self, tr: Trace, headers, status: int) -> None:
        kid = self.key_id(tr.scope) or ANONYMOUS
        state = self.limits.get(kid)
        if state is None:
            if len(self.limits) >= MAX_LABELS:
                kid = OTHER
            state = self.limits.setdefault(kid, {"model": None, "rejected": 0})
        state["headers"] = headers  # parsed when read (limits_view): ~10 us a response saved
        if tr.model is not None:
            state["model"] = tr.model
        if status == 429 and tr.ecode == "rate_limit_exceeded":
            state["rejected"] += 1
            self.rate_limited += 1
        state["updated"] = time.time()

    def limits_view(self) -> dict[str, dict]:
        """The last rate-limit state each key saw: its x-ratelimit-* headers, parsed."""
        out = {}
        for kid, state in sorted(self.limits.items()):
            view = {k: v for k, v in state.items() if k != "headers"}
            for k, v in state.get("headers") or ():
                if k.startswith(_RL_PREFIX):
                    name = k[len(_RL_PREFIX):].decode().replace("-", "_")  # limit_requests -> requests_limit
                    what, _, kind = name.partition("_")
                    value = v.decode()
                    view[f"{kind}_{what}"] = int(value) if value.isdigit() else value
            out[kid] = view
        return out

    # -- records ----------------------------------------------------------------------
    def observe(self, r) -> None:
        """A finished request record (``fakeai.engine.events.RequestRecord``)."""
        tr = _current.get()
        model = self.label(self.model_names, r.model)
        if tr is not None:
            tr.model = model
            a = self.cell(tr.endpoint, model, tr.key_label())
            batch = bool(tr.scope["state"].get("batch_id"))
        else:  # not over HTTP (the realtime WebSocket): its engine endpoint names it
            a = self.cell(self.label(self.endpoint_names, r.endpoint, True), model, None)
            batch = False
        ttft = r.first_token - r.arrival
        ttft = ttft if ttft > 0 else 0.0
        e2e = r.finished - r.arrival
        e2e = e2e if e2e > 0 else 0.0
        queue = r.scheduled - r.arrival
        queue = queue if queue > 0 else 0.0
        decode = r.finished - r.first_token
        decode = decode if decode > 0 else 0.0
        steps = r.completion_tokens if r.n <= 1 else -(-r.completion_tokens // r.n)
        gaps = steps - 1
        itl = decode / gaps if gaps > 0 else 0.0
        i_ttft, i_e2e, i_queue = index(ttft), index(e2e), index(queue)
        i_itl = index(itl) if gaps > 0 else 0
        aborted = r.finish_reason == "abort"
        if aborted:
            a.cancelled += 1
        else:
            a.completed += 1
        a.finish[r.finish_reason] = a.finish.get(r.finish_reason, 0) + 1
        if batch:
            a.batch += 1
        a.prompt += r.prompt_tokens
        a.completion += r.completion_tokens
        a.cached += r.cached_tokens
        a.lat.add(i_ttft, ttft, i_itl, itl, gaps, i_e2e, e2e, i_queue, queue)
        cell = a.recent.current(self.clock())
        cell[0] += 1
        cell[1].add(i_ttft, ttft, i_itl, itl, gaps, i_e2e, e2e, i_queue, queue)
        if r.stream:
            if aborted:
                a.s_cancelled += 1
            else:
                a.s_completed += 1
            a.s_ttft.add_at(i_ttft, ttft)
            if gaps > 0:
                a.s_itl.add_at(i_itl, itl, gaps)
            if decode > 0:
                tps = r.completion_tokens / decode
                a.s_tps.add_at(index(tps), tps)

    # -- reading ----------------------------------------------------------------------
    def merged(self, endpoints: bool = True, models: bool = True, keys: bool = True) -> Merged:
        """The scopes, merged from the cells (only the kinds asked for, besides ``all``)."""
        out = Merged()
        api = self.endpoint_names
        for (e, m, k), a in self.cells.items():
            if api.get(e, False):
                out.all.merge(a, True)
            if endpoints:
                out.endpoints.setdefault(e, Agg()).merge(a, False)
            if models and m is not None:
                out.models.setdefault(m, Agg()).merge(a, True)
            if keys and k is not None:
                out.keys.setdefault(k, Agg()).merge(a, False)
        return out

    def api_in_flight(self) -> int:
        return sum(n for e, n in self.in_flight.items() if self.endpoint_names.get(e, False))

    def api_streams(self) -> int:
        return sum(n for (kind, e), n in self.streams.items() if kind == "endpoint" and self.endpoint_names.get(e))

    def throughput(self) -> dict:
        """Rates of the API counters over about the last ``RATE_WINDOW_S`` seconds."""
        now = self.clock()
        api = self.endpoint_names
        sample = [now, 0, 0, 0, 0, 0]
        for (e, _, _), a in self.cells.items():
            if api.get(e, False):
                sample[1] += a.total
                sample[2] += a.completed + a.cancelled
                sample[3] += a.prompt
                sample[4] += a.completion
                sample[5] += a.errors
        rates = self._rates
        while len(rates) > 1 and rates[1][0] <= now - RATE_WINDOW_S:
            rates.popleft()
        ref = rates[0] if rates else sample
        if not rates or now - rates[-1][0] >= 0.05:
            rates.append(sample)
        dt = now - ref[0]
        names = ("requests_per_s", "completed_per_s", "prompt_tokens_per_s", "completion_tokens_per_s",
                 "errors_per_s")
        out = {"window_s": round(dt, 3)}
        out.update((n, (sample[i + 1] - ref[i + 1]) / dt if dt > 0 else 0.0) for i, n in enumerate(names))
        return out

    def collect(self):
        """fakeai's HTTP series for /metrics, from the same cells as the JSON (docs/metrics-api.md)."""
        rows, errors = [], []
        for (e, m, k), a in sorted(self.cells.items(), key=lambda kv: tuple(x or "" for x in kv[0])):
            rows += [((e, m or "", k or "", str(status)), n) for status, n in sorted(a.by_status.items())]
            errors += [((e, k or "", t), n) for t, n in sorted(a.err_type.items())]
        yield fam.counter("fakeai_http_requests", "HTTP requests answered, by endpoint, model (once known), "
                          "hashed API key id and status.", ("endpoint", "model", "api_key_id", "status"), rows)
        yield fam.counter("fakeai_http_errors", "HTTP error responses by endpoint, hashed API key id and the "
                          "error envelope's type.", ("endpoint", "api_key_id", "type"), errors)
        yield fam.gauge("fakeai_http_requests_in_flight", "HTTP requests being answered, by endpoint.",
                        ("endpoint",), sorted(((e,), n) for e, n in self.in_flight.items()))
        yield fam.gauge("fakeai_streams_active", "Event streams being sent, by endpoint.", ("endpoint",),
                        sorted(((e,), n) for (kind, e), n in self.streams.items() if kind == "endpoint"))
        yield fam.counter("fakeai_rate_limited", "Requests refused by the rate limits (429), by hashed API key id.",
                          ("api_key_id",), sorted(((k,), v["rejected"]) for k, v in self.limits.items()))

    def scope_doc(self, a: Agg, in_flight: int | None, stream_active: int, recent: bool) -> dict:
        """A Scope of docs/metrics-api.md (``in_flight`` None: left out)."""
        requests = {"total": a.total, "in_flight": in_flight, "succeeded": a.succeeded, "failed": a.failed,
                    "by_status": _str_keys(a.by_status), "completed": a.completed, "cancelled": a.cancelled,
                    "finish_reasons": dict(sorted(a.finish.items())), "batch": a.batch}
        if in_flight is None:
            del requests["in_flight"]
        out = {
            "requests": requests,
            "tokens": {"prompt": a.prompt, "completion": a.completion, "cached": a.cached,
                       "total": a.prompt + a.completion},
            "latency": a.lat.summary(),
            "errors": {"total": a.errors, "by_status": {str(k): v for k, v in sorted(a.by_status.items()) if k >= 400},
                       "by_type": dict(sorted(a.err_type.items())), "by_code": dict(sorted(a.err_code.items()))},
            "streaming": {"active": stream_active, "completed": a.s_completed, "cancelled": a.s_cancelled,
                          "ttft": a.s_ttft.summary(), "itl": a.s_itl.summary(), "tokens_per_s": a.s_tps.summary()},
        }
        if recent:
            count, dists = a.recent.merged(self.clock())
            out["recent"] = {"window_s": a.recent.seconds, "requests": count, **dists.summary()}
        return out


def _str_keys(d: dict) -> dict[str, int]:
    return {str(k): v for k, v in sorted(d.items())}
