"""Wire models of the JSON bodies of ``/v1/uploads`` and ``/v1/batches`` (request side).

``/v1/files`` takes a multipart form, read field by field in ``fakeai.api.files``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from .common import STRICT

Seconds = Annotated[int, Field(ge=3600, le=2592000)]
Metadata = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=512)]],
    Field(max_length=16),
]
BatchEndpoint = Literal["/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
                        "/v1/moderations"]


class ExpiresAfter(BaseModel):
    model_config = STRICT

    anchor: Literal["created_at"]
    seconds: Seconds


class CreateUploadRequest(BaseModel):
    model_config = STRICT

    filename: Annotated[str, StringConstraints(min_length=1)]
    purpose: str
    bytes: Annotated[int, Field(ge=0)]
    mime_type: str
    expires_after: ExpiresAfter | None = None


class CompleteUploadRequest(BaseModel):
    model_config = STRICT

    part_ids: list[str]
    md5: str | None = None


class CreateBatchRequest(BaseModel):
    model_config = STRICT

    input_file_id: str
    endpoint: BatchEndpoint
    completion_window: Literal["24h"]
    metadata: Metadata | None = None
    output_expires_after: ExpiresAfter | None = None
