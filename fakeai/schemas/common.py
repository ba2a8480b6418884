"""Request fields shared by the generating endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Temperature = Annotated[float, Field(ge=0, le=2)]
Penalty = Annotated[float, Field(ge=-2, le=2)]
Probability = Annotated[float, Field(ge=0, le=1)]


# strict: JSON types are not coerced ("0.5" is not a number, 1 is not a boolean), as OpenAI.
# defer_build: a model's validator is built when first used or by ``build_deferred`` (in the
# background after start-up), not at import: ~40 ms less to start.
STRICT = ConfigDict(extra="allow", strict=True, defer_build=True)


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class Extensions(BaseModel):
    """vLLM / NIM sampling extensions that benchmark clients send."""

    model_config = STRICT

    ignore_eos: bool = False
    min_tokens: Annotated[int, Field(ge=0)] = 0
    top_k: int | None = None
    min_p: Probability | None = None
    repetition_penalty: Annotated[float, Field(gt=0)] | None = None
    length_penalty: float | None = None
    skip_special_tokens: bool | None = None
    spaces_between_special_tokens: bool | None = None
    include_stop_str_in_output: bool | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    nvext: dict[str, Any] | None = None
    kv_transfer_params: dict[str, Any] | None = None  # vLLM prefill/decode disaggregation (docs/cluster.md)


class Sampling(Extensions):
    """Fields chat and legacy completions share."""

    model: str
    n: Annotated[int, Field(ge=1, le=128)] = 1
    seed: int | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    user: str | None = None


def stop_tuple(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    return tuple(s for s in stop if s)
