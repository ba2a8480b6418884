"""Wire model of ``POST /v1/completions`` (legacy), request side."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .common import STRICT, Extensions, Penalty, Probability, StreamOptions, Temperature

Prompt = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(Extensions):
    model_config = STRICT

    model: str
    prompt: Prompt | None = "<|endoftext|>"
    suffix: str | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = 16
    n: Annotated[int, Field(ge=1, le=128)] = 1
    best_of: Annotated[int, Field(ge=0, le=20)] | None = None
    echo: bool | None = False
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
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
    metadata: dict[str, Any] | None = None
