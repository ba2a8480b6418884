"""The one typed settings object.

Every field is an option that the running server reads. Each is settable
from the CLI (``--name-with-dashes``), the environment (``FAKEAI_NAME``) and a
config file (TOML or YAML, key ``name``); see ``fakeai.config.loader`` for the
precedence and ``docs/configuration.md`` for the reference.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OutputLength = Literal["fixed", "uniform", "normal", "max"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # -- server ---------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on (0 = any free port).")
    log_level: LogLevel = Field("info", description="Server log level.")
    access_log: bool = Field(False, description="Log every request line (costs throughput).")
    max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest accepted request body; larger gets 413."
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

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.output_length == "uniform" and self.output_tokens_spread >= self.output_tokens:
            raise ValueError("output_tokens_spread must be below output_tokens for a uniform length")
        return self


# CLI short names kept from fakeai 0.3.2 (``--ttft``/``--itl``) and friends.
CLI_ALIASES: dict[str, tuple[str, ...]] = {
    "ttft_ms": ("--ttft",),
    "itl_ms": ("--itl",),
}
