"""Wire model of ``POST /v1/completions`` (legacy), request side."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .common import STRICT, Sampling

Prompt = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(Sampling):
    model_config = STRICT

    prompt: Prompt | None = "<|endoftext|>"
    suffix: str | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = 16
    best_of: Annotated[int, Field(ge=0, le=20)] | None = None
    echo: bool | None = False
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    metadata: dict[str, Any] | None = None
