"""Wire models of the ``/v1/vector_stores`` requests."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .common import STRICT

Key = Annotated[str, Field(max_length=64)]
Metadata = Annotated[dict[Key, Annotated[str, Field(max_length=512)]], Field(max_length=16)]
# strings up to 512 characters, booleans or numbers (an int stays an int)
Attributes = Annotated[dict[Key, Annotated[str, Field(max_length=512)] | bool | int | float],
                       Field(max_length=16)]


class AutoChunking(BaseModel):
    model_config = STRICT
    type: Literal["auto"]


class StaticParams(BaseModel):
    model_config = STRICT
    max_chunk_size_tokens: int
    chunk_overlap_tokens: int


class StaticChunking(BaseModel):
    model_config = STRICT
    type: Literal["static"]
    static: StaticParams


ChunkingStrategy = Annotated[AutoChunking | StaticChunking, Field(discriminator="type")]


class ExpiresAfter(BaseModel):
    model_config = STRICT
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(ge=1, le=365)]


class CreateVectorStoreRequest(BaseModel):
    model_config = STRICT
    file_ids: Annotated[list[str], Field(max_length=500)] | None = None
    name: str | None = None
    description: str | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None


class UpdateVectorStoreRequest(BaseModel):
    model_config = STRICT
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class CreateVectorStoreFileRequest(BaseModel):
    model_config = STRICT
    file_id: str
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class UpdateVectorStoreFileAttributesRequest(BaseModel):
    model_config = STRICT
    attributes: Attributes | None


class CreateVectorStoreFileBatchRequest(BaseModel):
    model_config = STRICT
    file_ids: Annotated[list[str], Field(min_length=1, max_length=2000)] | None = None
    files: Annotated[list[CreateVectorStoreFileRequest], Field(min_length=1, max_length=2000)] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class RankingOptions(BaseModel):
    model_config = STRICT
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0


class VectorStoreSearchRequest(BaseModel):
    model_config = STRICT
    query: str | Annotated[list[str], Field(min_length=1)]
    rewrite_query: bool = False
    max_num_results: Annotated[int, Field(ge=1, le=50)] = 10
    filters: dict[str, Any] | None = None  # checked by the service (nested comparison/compound)
    ranking_options: RankingOptions | None = None
