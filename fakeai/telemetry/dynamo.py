"""NVIDIA Dynamo's frontend and worker series, with Dynamo's names, labels and buckets.

The frontend (``dynamo_frontend_*``, label ``model``) sees every request: its
counters and histograms come from finished-request records, its inflight and
queued gauges from the cluster's queues. Each simulated worker is a Dynamo
backend component (``dynamo_component_*``, labels ``dynamo_namespace``,
``dynamo_component``, ``dynamo_endpoint``, ``model``, ``worker_id``) whose
``kvstats`` gauges are its KV cache, read at scrape time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from ..engine.events import RequestRecord
from ..lazy import lazy_import
from .series import Family, Hist, log_buckets
from .vllm import active_blocks

fam = lazy_import("fakeai.telemetry.families")

NAMESPACE = "dynamo"
# Dynamo's defaults (DYN_METRICS_*_{MIN,MAX,COUNT}): log-spaced, two significant figures.
TTFT_BUCKETS = log_buckets(0.001, 480.0, 18)
ITL_BUCKETS = log_buckets(0.001, 2.0, 13)
DURATION_BUCKETS = log_buckets(1.0, 512.0, 10)
ISL_BUCKETS = log_buckets(50.0, 128000.0, 12)
OSL_BUCKETS = log_buckets(50.0, 32000.0, 10)
# A component's request duration uses the Prometheus client's default buckets.
COMPONENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_ENDPOINT = {"chat": "chat_completions", "messages": "anthropic_messages"}
REQUEST_LABELS = ("model", "endpoint", "request_type", "status", "error_type")
WORKER_LABELS = ("dynamo_namespace", "dynamo_component", "dynamo_endpoint", "model", "worker_id")
MAX_MODELS = 1024


class _Frontend:
    __slots__ = ("cached", "duration", "isl", "itl", "model_label", "osl", "output_tokens", "ttft")


class DynamoMetrics:
    def __init__(self) -> None:
        self._frontend: dict[str, _Frontend] = {}
        self._requests: dict[tuple, list[float]] = {}
        # per (model, worker): [requests, duration histogram]; labelled at scrape time, when the
        # worker's role (its Dynamo component) is known
        self._workers: dict[tuple[str, int], list] = {}
        self.disconnected = 0

        def h(name: str, doc: str, bounds: Sequence[float], labels=("model",)) -> Family:
            return Family(name, doc, "histogram", labels, bounds)

        self.requests = Family("dynamo_frontend_requests_total", "Total number of LLM requests processed",
                               "counter", REQUEST_LABELS)
        self.ttft = h("dynamo_frontend_time_to_first_token_seconds", "Time to first token in seconds",
                      TTFT_BUCKETS)
        self.itl = h("dynamo_frontend_inter_token_latency_seconds", "Inter-token latency in seconds",
                     ITL_BUCKETS)
        self.duration = h("dynamo_frontend_request_duration_seconds", "Duration of LLM requests",
                          DURATION_BUCKETS)
        self.isl = h("dynamo_frontend_input_sequence_tokens", "Input sequence length in tokens",
                     ISL_BUCKETS)
        self.osl = h("dynamo_frontend_output_sequence_tokens", "Output sequence length in tokens",
                     OSL_BUCKETS)
        self.cached = h("dynamo_frontend_cached_tokens",
                        "Number of cached tokens (prefix cache hits) per request", ISL_BUCKETS)
        self.output_tokens = Family("dynamo_frontend_output_tokens_total",
                                    "Total number of output tokens generated (updates in real-time)",
                                    "counter", ("model",))

    # -- records --------------------------------------------------------------------
    def observe(self, r: RequestRecord) -> None:
        f = self._frontend.get(r.model)
        if f is None:
            f = self._bind(r.model)
        aborted = r.finish_reason == "abort"
        key = (f.model_label, r.endpoint, r.stream, aborted)
        cell = self._requests.get(key)
        if cell is None:
            cell = self._requests[key] = self.requests.child((
                f.model_label, _ENDPOINT.get(r.endpoint, r.endpoint), "stream" if r.stream else "unary",
                "error" if aborted else "success", "cancelled" if aborted else ""))
        cell[0] += 1
        if aborted:
            self.disconnected += 1
        f.ttft.observe(max(r.first_token - r.arrival, 0.0))
        e2e = max(r.finished - r.arrival, 0.0)
        f.duration.observe(e2e)
        f.isl.observe(r.prompt_tokens)
        f.osl.observe(r.completion_tokens)
        f.cached.observe(r.cached_tokens)
        f.output_tokens[0] += r.completion_tokens
        steps = r.completion_tokens if r.n <= 1 else -(-r.completion_tokens // r.n)
        if steps > 1:
            f.itl.observe_n(max(r.finished - r.first_token, 0.0) / (steps - 1), steps - 1)
        w = self._workers.get((f.model_label, r.worker))
        if w is None:
            if r.worker < 0:  # cancelled before it was routed: the frontend saw it, no worker did
                return
            w = self._workers[(f.model_label, r.worker)] = [0, Hist(COMPONENT_BUCKETS)]
        w[0] += 1
        w[1].observe(e2e)

    def _bind(self, model: str) -> _Frontend:
        if len(self._frontend) >= MAX_MODELS:  # any model name is servable: stop growing
            other = self._frontend.get("other")
            if other is not None:
                return other
            model = "other"
        f = _Frontend()
        f.model_label = model
        for name in ("ttft", "itl", "duration", "isl", "osl", "cached", "output_tokens"):
            setattr(f, name, getattr(self, name).child((model,)))
        self._frontend[model] = f
        return f

    # -- scrape ---------------------------------------------------------------------
    def collect(self, workers: Sequence) -> Iterator:
        by_model: dict[str, list] = defaultdict(list)
        roles: dict[int, str] = {}
        for w in workers:
            by_model[w.model].append(w)
            roles[w.index] = w.role
            if (w.model, w.index) not in self._workers:
                self._workers[(w.model, w.index)] = [0, Hist(COMPONENT_BUCKETS)]
            if w.model not in self._frontend:
                self._bind(w.model)
        yield fam.from_family(self.requests)
        yield fam.gauge("dynamo_frontend_inflight_requests", "Number of inflight requests", ("model",),
                        [((m,), sum(w.running + w.waiting for w in ws)) for m, ws in by_model.items()])
        yield fam.gauge("dynamo_frontend_queued_requests", "Number of requests in HTTP processing queue",
                        ("model",), [((m,), sum(w.waiting for w in ws)) for m, ws in by_model.items()])
        yield fam.gauge("dynamo_frontend_disconnected_clients", "Number of disconnected clients", (),
                        [((), self.disconnected)])
        for h in (self.ttft, self.itl, self.duration, self.isl, self.osl, self.cached):
            yield fam.from_family(h)
        yield fam.from_family(self.output_tokens)
        for name, doc, value in _MODEL_GAUGES:
            yield fam.gauge(name, doc, ("model",), [((m,), value(ws[0])) for m, ws in by_model.items()])
        rows = [((NAMESPACE, _component_of(w.role), "generate", w.model, str(w.index)), w) for w in workers]
        for name, doc, value in _WORKER_GAUGES:
            yield fam.gauge(name, doc, WORKER_LABELS, [(lb, value(w)) for lb, w in rows])
        labelled = [((NAMESPACE, _component_of(roles.get(i)), "generate", m, str(i)), cell)
                     for (m, i), cell in self._workers.items()]
        yield fam.counter("dynamo_component_requests_total", "Total number of requests processed by "
                          "work handler", WORKER_LABELS, [(lb, cell[0]) for lb, cell in labelled])
        yield fam.histogram("dynamo_component_request_duration_seconds", "Time spent processing requests "
                            "by work handler", WORKER_LABELS, [(lb, cell[1]) for lb, cell in labelled])


def _component_of(role: str | None) -> str:
    """Dynamo's vLLM workers register as component "prefill" or "backend" (decode and aggregated)."""
    return "prefill" if role == "prefill" else "backend"


def _hit_rate(w) -> float:
    return w.prefix_hit_tokens / w.prefix_query_tokens if w.prefix_query_tokens else 0.0


_MODEL_GAUGES = (
    ("dynamo_frontend_model_total_kv_blocks", ("Total KV cache blocks available for a worker serving "
     "the model"), lambda w: w.kv_blocks_total),
    ("dynamo_frontend_model_max_num_seqs", "Maximum number of sequences for a worker serving the model",
     lambda w: w.max_num_seqs),
    ("dynamo_frontend_model_kv_cache_block_size", ("KV cache block size in tokens for a worker serving "
     "the model"), lambda w: w.block_size),
)

_WORKER_GAUGES = (
    ("dynamo_component_kvstats_active_blocks", "Number of active KV cache blocks currently in use",
     active_blocks),
    ("dynamo_component_kvstats_total_blocks", "Total number of KV cache blocks available",
     lambda w: w.kv_blocks_total),
    ("dynamo_component_kvstats_gpu_cache_usage_percent", "GPU cache usage as a percentage (0.0-1.0)",
     lambda w: active_blocks(w) / w.kv_blocks_total if w.kv_blocks_total else 0.0),
    ("dynamo_component_kvstats_gpu_prefix_cache_hit_rate", ("GPU prefix cache hit rate as a percentage "
     "(0.0-1.0)"), _hit_rate),
    ("dynamo_component_inflight_requests", ("Number of requests currently being processed by work "
     "handler"), lambda w: w.running + w.waiting),
)
