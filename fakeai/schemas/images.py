"""Wire models of the image endpoints (request side).

Every field of the official CreateImageRequest, CreateImageEditRequest and
CreateImageVariationRequest is accepted with the spec's enums and ranges.
Which values a given model supports (sizes, qualities, n, the GPT-only
fields) is checked by the API layer once the model is known. The uploaded
files of edits and variations (``image``, ``image[]``, ``mask``) are not
fields here: the API layer reads them from the multipart form itself.

``seed`` is a fakeai extension: it joins the prompt in seeding the picture.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from .common import STRICT

Count = Annotated[int, Field(ge=1, le=10)]
Quality = Literal["standard", "hd", "low", "medium", "high", "auto"]
ResponseFormat = Literal["url", "b64_json"]
OutputFormat = Literal["png", "jpeg", "webp"]
Background = Literal["transparent", "opaque", "auto"]
Compression = Annotated[int, Field(ge=0, le=100)]
PartialImages = Annotated[int, Field(ge=0, le=3)]


class _ImageCommon(BaseModel):
    model_config = STRICT

    model: str | None = None
    n: Count | None = None
    size: str | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    safety_identifier: str | None = None
    seed: int | None = None


class _GptImageFields(_ImageCommon):
    prompt: str
    quality: Quality | None = None
    background: Background | None = None
    output_format: OutputFormat | None = None
    output_compression: Compression | None = None
    stream: bool | None = None
    partial_images: PartialImages | None = None


class ImageGenerationRequest(_GptImageFields):
    """``POST /v1/images/generations`` (JSON)."""

    moderation: Literal["low", "auto"] | None = None
    style: Literal["vivid", "natural"] | None = None


class ImageEditRequest(_GptImageFields):
    """``POST /v1/images/edits``: the non-file fields of the multipart form."""

    input_fidelity: Literal["high", "low"] | None = None


class ImageVariationRequest(_ImageCommon):
    """``POST /v1/images/variations``: the non-file fields of the multipart form."""


#: Form fields that arrive as text but are integers or booleans on the wire model.
INT_FIELDS = frozenset({"n", "output_compression", "partial_images", "seed"})
BOOL_FIELDS = frozenset({"stream"})
