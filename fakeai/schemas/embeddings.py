"""Wire model of ``POST /v1/embeddings``, request side."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from .common import STRICT

# A string, a list of strings, a token array, or a list of token arrays (OpenAI's four forms).
EmbeddingInput = str | list[str] | list[int] | list[list[int]]


class EmbeddingRequest(BaseModel):
    model_config = STRICT

    model: str
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None
    # NVIDIA NIM extensions: asymmetric models embed queries and passages differently;
    # ``truncate`` cuts an over-long input instead of rejecting it.
    input_type: Literal["query", "passage"] | None = None
    truncate: Literal["NONE", "START", "END"] | None = None
