"""vLLM's Prometheus series, with vLLM's names, labels (``model_name``, ``engine``) and buckets.

Each simulated worker is one vLLM engine: ``engine`` is its index. Histograms
and ``request_success`` are fed from finished-request records; the scheduler
gauges, KV usage and the token, prefix-cache and preemption counters are read
from the cluster at scrape time, so they always agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ..engine.events import RequestRecord
from ..lazy import lazy_import
from .series import Family, buckets_1_2_5

fam = lazy_import("fakeai.telemetry.families")

LABELS = ("model_name", "engine")
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0)
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
                   120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
N_BUCKETS = (1, 2, 5, 10, 20)

# OpenAI finish reasons in vLLM's terms (a tool call ends on EOS, as "stop").
FINISHED_REASONS = ("stop", "length", "abort")
_REASON = {"stop": "stop", "length": "length", "abort": "abort", "tool_calls": "stop",
           "function_call": "stop", "content_filter": "stop"}
MAX_LABEL_SETS = 1024  # beyond this many (model, engine) pairs, new models are counted as "other"


class _Children:
    """Every record-fed child of one (model_name, engine), bound once."""

    __slots__ = (
        "decode",
        "e2e",
        "generation",
        "inference",
        "itl",
        "max_generation",
        "max_tokens",
        "n",
        "prefill",
        "prompt",
        "queue",
        "request_tpot",
        "success",
        "ttft",
    )


class VllmMetrics:
    def __init__(self, max_model_len: Callable[[str], int]) -> None:
        self._max_model_len = max_model_len
        self._children: dict[tuple[str, int], _Children] = {}

        def h(name: str, doc: str, bounds: Sequence[float] = ()) -> Family:
            return Family(name, doc, "histogram", LABELS, bounds)

        self.ttft = h("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                      TTFT_BUCKETS)
        self.tpot = h("vllm:time_per_output_token_seconds",
                      "Histogram of time per output token in seconds.DEPRECATED: Use "
                      "vllm:inter_token_latency_seconds instead.", TPOT_BUCKETS)
        self.itl = h("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                     TPOT_BUCKETS)
        self.request_tpot = h("vllm:request_time_per_output_token_seconds",
                              "Histogram of time_per_output_token_seconds per request.", TPOT_BUCKETS)
        self.e2e = h("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                     LATENCY_BUCKETS)
        self.queue = h("vllm:request_queue_time_seconds",
                       "Histogram of time spent in WAITING phase for request.", LATENCY_BUCKETS)
        self.inference = h("vllm:request_inference_time_seconds",
                           "Histogram of time spent in RUNNING phase for request.", LATENCY_BUCKETS)
        self.prefill = h("vllm:request_prefill_time_seconds",
                         "Histogram of time spent in PREFILL phase for request.", LATENCY_BUCKETS)
        self.decode = h("vllm:request_decode_time_seconds",
                        "Histogram of time spent in DECODE phase for request.", LATENCY_BUCKETS)
        self.prompt = h("vllm:request_prompt_tokens", "Number of prefill tokens processed.")
        self.generation = h("vllm:request_generation_tokens", "Number of generation tokens processed.")
        self.max_generation = h("vllm:request_max_num_generation_tokens",
                                "Histogram of maximum number of requested generation tokens.")
        self.max_tokens = h("vllm:request_params_max_tokens",
                            "Histogram of the max_tokens request parameter.")
        self.n = h("vllm:request_params_n", "Histogram of the n request parameter.", N_BUCKETS)
        self.success = Family("vllm:request_success", "Count of successfully processed requests.",
                              "counter", LABELS + ("finished_reason",))
        self._histograms = (self.e2e, self.ttft, self.tpot, self.itl, self.request_tpot, self.queue,
                            self.inference, self.prefill, self.decode, self.prompt, self.generation,
                            self.max_generation, self.max_tokens, self.n)

    # -- records --------------------------------------------------------------------
    def observe(self, r: RequestRecord) -> None:
        c = self._children.get((r.model, r.worker))
        if c is None:
            if r.worker < 0:  # cancelled before it reached a worker: no engine saw it
                return
            c = self._bind(r.model, r.worker)
        c.ttft.observe(max(r.first_token - r.arrival, 0.0))
        c.e2e.observe(max(r.finished - r.arrival, 0.0))
        c.queue.observe(max(r.scheduled - r.arrival, 0.0))
        c.prefill.observe(max(r.first_token - r.scheduled, 0.0))
        c.inference.observe(max(r.finished - r.scheduled, 0.0))
        decode = max(r.finished - r.first_token, 0.0)
        c.decode.observe(decode)
        c.prompt.observe(r.prompt_tokens)
        c.generation.observe(r.completion_tokens)
        steps = r.completion_tokens if r.n <= 1 else -(-r.completion_tokens // r.n)
        c.max_generation.observe(steps)
        if r.max_tokens is not None:
            c.max_tokens.observe(r.max_tokens)
        c.n.observe(r.n)
        if steps > 1:
            gap = decode / (steps - 1)
            c.itl.observe_n(gap, steps - 1)  # also vllm:time_per_output_token_seconds (same child)
            c.request_tpot.observe(gap)
        c.success[_REASON.get(r.finish_reason, "stop")][0] += 1

    def _bind(self, model: str, worker: int) -> _Children:
        if len(self._children) >= MAX_LABEL_SETS:
            other = self._children.get(("other", worker))
            if other is not None:
                return other
            model = "other"
        labels = (model, str(worker))
        tokens = buckets_1_2_5(self._max_model_len(model))
        c = _Children()
        for name in ("ttft", "e2e", "queue", "prefill", "decode", "inference", "n", "itl", "request_tpot"):
            setattr(c, name, getattr(self, name).child(labels))
        self.tpot.children[labels] = c.itl  # the old name of the same observations
        for name in ("prompt", "generation", "max_generation", "max_tokens"):
            setattr(c, name, getattr(self, name).child(labels, tokens))
        c.success = {reason: self.success.child(labels + (reason,)) for reason in FINISHED_REASONS}
        self._children[(model, worker)] = c
        return c

    # -- scrape ---------------------------------------------------------------------
    def collect(self, workers: Sequence, config) -> Iterator:
        """Every vLLM family: gauges and cluster counters from ``workers``, then the record-fed ones
        (with zeroed children for each worker, so dashboards have series before any traffic).
        ``config`` has the cluster's ``enable_prefix_caching`` and ``gpu_memory_utilization``."""
        rows = [((w.model, str(w.index)), w) for w in workers]
        for labels, w in rows:
            if (w.model, w.index) not in self._children:
                self._bind(w.model, w.index)
        yield fam.gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
                        LABELS, [(lb, w.running) for lb, w in rows])
        yield fam.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                        LABELS, [(lb, w.waiting) for lb, w in rows])
        usage = [(lb, _usage(w)) for lb, w in rows]
        yield fam.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", LABELS,
                        usage)
        yield fam.gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage."
                        "DEPRECATED: Use vllm:kv_cache_usage_perc instead.", LABELS, usage)
        for name, doc, value in _COUNTERS:
            yield fam.counter(name, doc, LABELS, [(lb, value(w)) for lb, w in rows])
        info = ("block_size", "cache_dtype", "enable_prefix_caching", "gpu_memory_utilization",
                "num_cpu_blocks", "num_gpu_blocks", "engine")
        caching = str(bool(config.enable_prefix_caching))
        utilisation = str(config.gpu_memory_utilization)
        yield fam.gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", info,
                        [((str(w.block_size), "auto", caching, utilisation, "0", str(w.kv_blocks_total),
                           str(w.index)), 1) for w in workers])
        yield fam.from_family(self.success)
        for h in self._histograms:
            yield fam.from_family(h)


def active_blocks(w) -> int:
    """KV blocks held by running requests. vLLM (and Dynamo's kvstats) count blocks that only
    cache a finished request's prefix as free; ``kv_blocks_used`` includes them."""
    return getattr(w, "kv_blocks_active", w.kv_blocks_used)


def _usage(w) -> float:
    return active_blocks(w) / w.kv_blocks_total if w.kv_blocks_total else 0.0


# Cluster counters: (name, help, value) -- the prompt counter includes cached tokens, as vLLM's.
_COUNTERS: tuple[tuple[str, str, Callable], ...] = (
    ("vllm:prompt_tokens", "Number of prefill tokens processed.",
     lambda w: w.prompt_tokens_total + w.prefix_hit_tokens),
    ("vllm:generation_tokens", "Number of generation tokens processed.",
     lambda w: w.generation_tokens_total),
    ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
     lambda w: w.prefix_query_tokens),
    ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
     lambda w: w.prefix_hit_tokens),
    ("vllm:gpu_prefix_cache_queries", ("GPU prefix cache queries, in terms of number of queried "
     "tokens. DEPRECATED: Use vllm:prefix_cache_queries instead."), lambda w: w.prefix_query_tokens),
    ("vllm:gpu_prefix_cache_hits", ("GPU prefix cache hits, in terms of number of cached tokens. "
     "DEPRECATED: Use vllm:prefix_cache_hits instead."), lambda w: w.prefix_hit_tokens),
    ("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
     lambda w: w.preemptions),
)
