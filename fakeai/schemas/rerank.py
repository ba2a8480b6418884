"""Wire models of the reranking endpoints, request side: NVIDIA NIM ``/v1/ranking``,
Cohere/Jina-style ``/v1/rerank`` and ``/v2/rerank``, and Hugging Face TEI ``/rerank``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from .common import STRICT


class TextItem(BaseModel):
    """``{"text": ...}``: a NIM query or passage, or a Cohere v1 document object."""

    model_config = STRICT
    text: str


class RankingRequest(BaseModel):
    """NIM: ``{model, query: {text}, passages: [{text}], truncate}``."""

    model_config = STRICT

    model: str
    query: TextItem
    passages: list[TextItem]
    truncate: Literal["NONE", "END"] = "NONE"


class RerankRequest(BaseModel):
    """Cohere (v1 and v2), Jina and vLLM: ``{model, query, documents, top_n, ...}``."""

    model_config = STRICT

    model: str | None = None
    query: str
    documents: list[str | TextItem]
    top_n: Annotated[int, Field(ge=1)] | None = None
    return_documents: bool | None = None  # default: True on /v1 (Jina, vLLM), False on /v2 (Cohere)
    max_tokens_per_doc: Annotated[int, Field(ge=1)] = 4096


class TEIRerankRequest(BaseModel):
    """TEI: ``{query, texts, raw_scores, return_text, truncate, truncation_direction}``."""

    model_config = STRICT

    model: str | None = None  # TEI serves one model and ignores this; used if it names a reranker
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False
    truncation_direction: Literal["Left", "Right", "left", "right"] = "Right"
