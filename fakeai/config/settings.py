"""The one typed settings object.

Every field is an option that the running server reads. Each is settable
from the CLI (``--name-with-dashes``), the environment (``FAKEAI_NAME``) and a
config file (TOML or YAML, key ``name``); see ``fakeai.config.loader`` for the
precedence and ``docs/configuration.md`` for the reference.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OutputLength = Literal["fixed", "uniform", "normal", "max"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("workers")
    @classmethod
    def _workers(cls, v):
        if v != "auto" and v < 1:
            raise ValueError("workers must be at least 1 (or 'auto')")
        return v

    @model_validator(mode="after")
    def _workers_share_a_store(self):
        if self.workers != 1 and self.store == "memory":
            raise ValueError("workers: several processes cannot share the memory store; use the default "
                             "sqlite store (or redis)")
        return self

    @property
    def process_count(self) -> int:
        """``workers`` as a number of processes."""
        return (os.cpu_count() or 1) if self.workers == "auto" else self.workers

    # -- server ---------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on (0 = any free port).")
    log_level: LogLevel = Field("info", description="Server log level.")
    access_log: bool = Field(False, description="Log every request line (costs throughput).")
    max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest accepted request body; larger gets 413."
    )
    workers: int | Literal["auto"] = Field(
        1, description="Server processes sharing the listening socket ('auto': one per core). Each simulates "
        "its own share of the cluster; stored resources, rate limits, keys and run-time changes are shared "
        "through the store, and a metrics scrape of any process sees the sum (docs/operations.md)."
    )

    # -- server limits (fakeai/httpproto.py) --------------------------------------
    header_timeout_s: float = Field(
        10.0, ge=0, le=3600, description="Seconds a connection has to deliver a whole request head, from "
        "its opening or from the first byte of a later request; then 408 and closed (slowloris). 0: no limit."
    )
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request head (request line and "
        "headers); larger gets 431 and the connection closed."
    )
    keep_alive_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Seconds an idle keep-alive connection stays open. Longer than "
        "clients' own idle timeouts (httpx 5 s, aiohttp 15 s), so that the client closes it first."
    )
    max_connections: int = Field(
        0, ge=0, description="Most open connections (or requests in flight) per server process; a request "
        "beyond gets 503 in OpenAI's envelope and its connection closed. 0: no limit."
    )
    listen_backlog: int = Field(
        2048, ge=1, le=65535, description="Connections the kernel queues before the server accepts them "
        "(listen backlog, capped by net.core.somaxconn)."
    )
    request_timeout_s: float = Field(
        0.0, ge=0, le=86400, description="Seconds a request may wait for its response to start (a whole "
        "non-streamed answer; a stream starts at once); then 504 in OpenAI's envelope. 0: no limit."
    )

    # -- models ---------------------------------------------------------------
    allow_any_model: bool = Field(
        False,
        description="Accept any model name, serving unknown ones with the default profile "
        "(otherwise 404 model_not_found).",
    )
    models_file: list[str] = Field(
        default_factory=list,
        description="Extra catalog files (TOML or YAML) whose models add to or override the built-in catalog.",
    )
    strict_params: bool = Field(
        False, description="Reject unknown request fields with 400 'Unrecognized request argument'."
    )

    # -- timing ---------------------------------------------------------------
    ttft_ms: float | None = Field(
        None,
        ge=0,
        description="Fixed time to first token in ms for every model, replacing the catalog's "
        "prefill model. Unset: overhead + prefill ms/token x uncached prompt tokens.",
    )
    itl_ms: float | None = Field(
        None, ge=0, description="Fixed inter-token latency in ms for every model. Unset: the catalog's."
    )
    jitter: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Relative standard deviation of TTFT and ITL noise (0.05 = 5%). Unset: the "
        "catalog's per-model jitter, or 0 when --ttft/--itl are given.",
    )
    jitter_dist: Literal["normal", "lognormal"] = Field("normal", description="Noise distribution.")
    max_num_seqs: int = Field(
        256, ge=1, description="Concurrent sequences a worker runs; more requests wait in its queue."
    )
    timer_resolution_ms: float = Field(
        1.0, gt=0, le=50, description="Granularity of the shared timer that paces every stream."
    )

    reasoning_tokens: int = Field(
        256,
        ge=0,
        description="Reasoning tokens of a reasoning model at reasoning_effort medium (low x0.35, "
        "high x2.5, ...); 0 turns reasoning off.",
    )

    image_ttl_s: int = Field(
        3600, ge=1, description="Seconds a generated image's URL (/images/{id}.{ext}) stays valid; then 404."
    )

    # -- storage ------------------------------------------------------------------
    data_dir: str = Field(
        "~/.local/share/fakeai",
        description="Directory of the embedded store (SQLite database and uploaded file contents).",
    )
    store: Literal["sqlite", "memory", "redis"] = Field(
        "sqlite",
        description="Where created resources live: sqlite (embedded, durable, in data_dir), memory "
        "(lost on exit), or redis (shared by replicas; see redis_url).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis server of the redis store (and shared rate limits)."
    )

    # -- files and batches --------------------------------------------------------
    max_file_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Largest file POST /v1/files accepts (OpenAI: 512 MB); larger gets 413."
    )
    max_upload_bytes: int = Field(
        8 * 1024**3, ge=1, description="Largest total size an Upload (/v1/uploads) may declare (OpenAI: 8 GB)."
    )
    batch_concurrency: int = Field(
        64, ge=1, description="Lines of one batch running at once (each goes through the engine like a live request)."
    )
    batch_speedup: float = Field(
        1.0,
        gt=0,
        description="How many times faster than live requests batch lines run: their simulated latency is "
        "divided by this (e.g. 1000 runs a day's worth of batch work in under two minutes).",
    )

    # -- fine-tuning ------------------------------------------------------------------
    fine_tune_step_ms: float = Field(
        100.0,
        ge=0,
        le=60_000,
        description="Wall-clock milliseconds per simulated fine-tuning training step (validating_files and "
        "queued last 5 steps each); 0 runs a job as fast as it can be recorded.",
    )

    # -- organization, usage, costs -------------------------------------------------
    usage_flush_ms: int = Field(
        1000,
        ge=10,
        le=3_600_000,
        description="How often usage accounting is written to the store: the durability window (a crash "
        "loses at most this much usage; a clean shutdown and every usage/costs read flush first).",
    )

    # -- output length ----------------------------------------------------------
    output_length: OutputLength = Field(
        "normal",
        description="Distribution of completion length when the model stops on its own: fixed, "
        "uniform, normal, or max (always max_tokens).",
    )
    output_tokens: int = Field(
        160, ge=1, description="Mean (fixed: exact) completion length in tokens."
    )
    output_tokens_spread: int = Field(
        80, ge=0, description="Half-width (uniform) or standard deviation (normal) of the length."
    )
    default_max_tokens: int | None = Field(
        None,
        ge=1,
        description="Completion cap for a chat request that gives no max_tokens. Unset: the model's max "
        "output. (Legacy completions default to 16, as OpenAI's.)",
    )

    # -- telemetry ----------------------------------------------------------------
    dcgm_exporter: bool = Field(
        False, description="Also serve the DCGM series on a port of their own (GET /metrics), as "
        "dcgm-exporter does; see dcgm_exporter_port."
    )
    dcgm_exporter_port: int = Field(
        9400, ge=0, le=65535, description="Port of the dcgm-exporter lookalike (with dcgm_exporter)."
    )
    dcgm_hostname_label: Literal["Hostname", "hostname"] = Field(
        "Hostname", description="Name of the DCGM host label: Hostname (what dcgm-exporter wrote "
        "until mid-2026, and what its dashboards filter on) or hostname (newer dcgm-exporter)."
    )
    dcgm_pod_labels: bool = Field(
        False, description="Label every DCGM series with the pod, namespace and container of the "
        "simulated worker that owns the GPU, as dcgm-exporter's Kubernetes pod mapping does."
    )
    k8s_namespace: str = Field(
        "default", min_length=1, description="Kubernetes namespace of the simulated worker pods "
        "(the DCGM namespace label, with dcgm_pod_labels)."
    )
    kv_events_endpoint: str | None = Field(
        None, description="Publish vLLM-format KV cache events over ZMQ PUB at this endpoint, e.g. "
        "tcp://*:5557 (binds; an endpoint without * connects). Unset: off."
    )

    # -- metrics API, history and stream (docs/metrics-api.md) ------------------------
    metrics_minimal: bool = Field(
        False, description="Metrics-minimal mode: no per-request statistics (/metrics/json keeps only "
        "cluster, gpus, faults and rate_limits; the per-model views answer 404), no history. The "
        "Prometheus series are unchanged."
    )
    metrics_history_interval_s: float = Field(
        1.0, ge=0, le=3600, description="Seconds between metrics history entries (/metrics/history); 0: no history."
    )
    metrics_history_length: int = Field(
        900, ge=1, le=1_000_000, description="Metrics history entries kept in memory (the oldest go first)."
    )
    metrics_history_file: str | None = Field(
        None, description="Also append every metrics history entry to this JSONL file (replay it with "
        "fakeai metrics --replay FILE). Unset: memory only."
    )

    # -- cluster (docs/cluster.md) --------------------------------------------------
    gpu_type: Literal["A100-80GB", "H100-80GB", "H200", "B200"] = Field(
        "H100-80GB", description="GPU of every simulated worker: its memory sizes the KV cache, its "
        "bandwidth and FLOP/s scale the catalog's (H100) step times."
    )
    tensor_parallel_size: int | None = Field(
        None, ge=1, le=64, description="GPUs per worker. Unset: the smallest power of two whose "
        "weights take at most 75% of a GPU's usable memory."
    )
    workers_per_model: int = Field(
        1, ge=1, le=64, description="Data-parallel workers (engine replicas) serving each model; "
        "with disaggregation, its decode workers."
    )
    disaggregation: bool = Field(
        False, description="Prefill/decode disaggregation: requests prefill on prefill workers, "
        "their KV moves over NVLink, and they decode on decode workers."
    )
    prefill_workers: int = Field(
        1, ge=1, le=64, description="Prefill workers per model (with disaggregation)."
    )
    kv_block_size: int = Field(16, ge=1, le=256, description="Tokens per KV cache block.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of GPU memory for weights and KV cache (vLLM's "
        "--gpu-memory-utilization); the KV cache gets what the weights leave."
    )
    kv_cache_blocks: int | None = Field(
        None, ge=1, description="KV blocks per worker, replacing the figure derived from GPU memory "
        "(vLLM's --num-gpu-blocks-override)."
    )
    max_num_batched_tokens: int = Field(
        8192, ge=1, description="Token budget of one engine step: decode tokens plus chunks of "
        "prefill (chunked prefill)."
    )
    enable_prefix_caching: bool = Field(
        True, description="Reuse the KV blocks of cached prompt prefixes (shorter TTFT, "
        "usage.prompt_tokens_details.cached_tokens)."
    )
    router_strategy: Literal["kv", "round_robin", "random", "least_loaded", "session"] = Field(
        "kv", description="How a request picks a worker of its model: kv (Dynamo's KV-aware cost), "
        "round_robin, random, least_loaded, or session (sticky by x-session-id, else kv). "
        "Per request: header x-fakeai-router."
    )
    router_overlap_weight: float = Field(
        1.0, ge=0, description="Weight of the prefill blocks in the kv router's cost (Dynamo's "
        "kv_overlap_score_weight); 0 balances load only. Per request: x-fakeai-overlap-weight."
    )
    router_temperature: float = Field(
        0.0, ge=0, description="Softmax temperature of the kv router: 0 picks the cheapest worker. "
        "Per request: x-fakeai-router-temperature."
    )

    # -- security: keys, rate limits, abuse, input validation (docs/security.md) ----
    api_key: list[str] = Field(
        default_factory=list,
        description="API key clients must present (repeatable; Bearer, x-api-key or api-key header). A "
        "value starting with @, or naming a file, is a file of keys, one per line. Any key turns "
        "authentication on.",
        json_schema_extra={"secret": True},
    )
    admin_key: str | None = Field(
        None,
        description="Key of the /admin API. Unset: /admin is open while authentication is off and "
        "closed while it is on.",
        json_schema_extra={"secret": True},
    )
    public_health: bool = Field(True, description="Serve /health and /health/ready without a key.")
    public_metrics: bool = Field(False, description="Serve the metrics routes (/metrics...) without a key.")
    rate_limit_tier: Literal["free", "tier-1", "tier-2", "tier-3", "tier-4", "tier-5"] | None = Field(
        None,
        description="OpenAI usage tier whose published per-model RPM/TPM/RPD limits apply. Any rate_limit_* "
        "option turns rate limiting on (per key and model).",
    )
    rate_limit_rpm: int | None = Field(None, ge=1, description="Requests per minute (overrides the tier's).")
    rate_limit_tpm: int | None = Field(None, ge=1, description="Tokens per minute (overrides the tier's).")
    rate_limit_rpd: int | None = Field(None, ge=1, description="Requests per day (overrides the tier's).")
    rate_limit_tpd: int | None = Field(None, ge=1, description="Tokens per day (overrides the tier's).")
    rate_limit_quantum_s: int | None = Field(
        None,
        ge=1,
        le=60,
        description="Enforce the per-minute limits over windows this many seconds long, as OpenAI may "
        "(RPM x quantum / 60 per window). Unset: whole minutes.",
    )
    abuse_detection: bool = Field(
        False, description="Ban client IPs for a while after repeated failed auths, rate-limit hits, "
        "oversized bodies or prompt injections (403 with Retry-After)."
    )
    abuse_window_s: float = Field(60.0, gt=0, description="Window in which abuse strikes are counted.")
    abuse_auth_failures: int = Field(10, ge=1, description="Failed authentications that ban an IP.")
    abuse_rate_limit_hits: int = Field(50, ge=1, description="Rate-limit refusals that ban an IP.")
    abuse_oversized: int = Field(5, ge=1, description="Oversized request bodies (413) that ban an IP.")
    abuse_injections: int = Field(3, ge=1, description="Detected prompt injections that ban an IP.")
    abuse_ban_s: float = Field(60.0, gt=0, description="First ban of an IP; each later one is twice as long.")
    abuse_max_ban_s: float = Field(3600.0, gt=0, description="Longest ban.")
    max_json_depth: int = Field(64, ge=2, description="Deepest JSON nesting a request body may have; deeper gets 400.")
    max_json_array: int = Field(
        100_000, ge=1, description="Most items a JSON array in a request body may have; more gets 400."
    )
    injection_detection: Literal["off", "flag", "refuse"] = Field(
        "off",
        description="Prompt-injection and jailbreak detection on the user's prompt: flag (log, count, "
        "x-fakeai-injection header) or refuse (400).",
    )
    safety_refusals: bool = Field(
        False, description="Chat answers prompts that moderation flags with a refusal (message.refusal)."
    )

    # -- faults, scenarios, record/replay (docs/faults-and-scenarios.md) -------------
    fault_rate: float = Field(
        0.0, ge=0, le=1, description="Share of /v1 requests answered with an injected fault drawn evenly "
        "from fault_types (0: off)."
    )
    fault_types: list[str] = Field(
        default_factory=lambda: ["429", "500", "503"],
        description="The faults fault_rate draws from, in the X-FakeAI-Fault grammar (429, 500, 502, 503, "
        "504, overloaded, timeout=5s, cut-after=3, ...).",
    )
    fault_rates: list[str] = Field(
        default_factory=list,
        description="Fault rules 'RATE SPEC [ENDPOINT]': '20% 503', '0.05 cut-after=3 /v1/chat/completions' "
        "(join items of one spec with ';' in the environment).",
    )
    fault_schedule: list[str] = Field(
        default_factory=list,
        description="Timed fault rules 'START-END RATE SPEC [ENDPOINT]', in seconds since start-up: "
        "'30s-90s 20% 503' (an open end runs on: '60s- 5% 500').",
    )
    fault_seed: int | None = Field(
        None, description="Seed of the fault draws: the same sequence of requests gets the same faults. Unset: random."
    )
    fault_header: bool = Field(
        True, description="Obey the X-FakeAI-Fault request header (it only affects the request that carries it)."
    )
    scenarios_file: str | None = Field(
        None, description="YAML file of scripted scenarios (request matchers -> scripted outputs), re-read "
        "when it changes."
    )
    record_upstream: str | None = Field(
        None, description="Record mode: proxy every /v1 request to this OpenAI-compatible server (e.g. "
        "https://api.openai.com/v1) and save each answer as a cassette in cassette_dir."
    )
    cassette_dir: str | None = Field(
        None, description="Directory of cassettes: recorded into with record_upstream (unset: "
        "data_dir/cassettes), else replayed from (byte for byte, with the recorded timing)."
    )
    replay_miss: Literal["404", "generate"] = Field(
        "404", description="Replay mode, a request with no cassette: 404 cassette_not_found, or generate as usual."
    )

    @field_validator("fault_types", "fault_rates", "fault_schedule")
    @classmethod
    def _check_faults(cls, values: list[str], info) -> list[str]:
        from ..security.fault_spec import parse_fault, parse_rule, parse_window_rule

        parse = {"fault_types": parse_fault, "fault_rates": parse_rule, "fault_schedule": parse_window_rule}
        for v in values:
            parse[info.field_name](v)
        return values

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.output_length == "uniform" and self.output_tokens_spread >= self.output_tokens:
            raise ValueError("output_tokens_spread must be below output_tokens for a uniform length")
        return self


def secret_fields() -> frozenset[str]:
    """Options whose values are never shown (``fakeai config``, /admin/config, logs)."""
    return frozenset(n for n, f in Settings.model_fields.items()
                     if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("secret"))


_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/:@]*:)[^/@]+@", re.IGNORECASE)


def masked(values: dict) -> dict:
    """``values`` (a settings dump) with every secret replaced by ``***`` (one per list item),
    and the password of any URL (``redis://:pw@host``) too."""
    out = {k: _URL_PASSWORD.sub(r"\1***@", v) if isinstance(v, str) else v for k, v in values.items()}
    for name in secret_fields() & out.keys():
        v = out[name]
        out[name] = ["***"] * len(v) if isinstance(v, list) else None if v is None else "***"
    return out


# CLI short names kept from fakeai 0.3.2 (``--ttft``/``--itl``) and friends.
CLI_ALIASES: dict[str, tuple[str, ...]] = {
    "ttft_ms": ("--ttft",),
    "itl_ms": ("--itl",),
}
