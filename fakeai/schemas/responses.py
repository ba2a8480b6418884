"""Wire models of the Responses API, Conversations and stored chat completions (request side).

Input items, tools and ``text.format`` stay plain dicts: they are unions of many
shapes, checked item by item in ``fakeai.api.responses_input`` / ``responses_plan``
so each problem gets OpenAI's exact ``param`` path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .common import STRICT, Probability, Temperature

Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Summary = Literal["auto", "concise", "detailed"]


class ReasoningParam(BaseModel):
    model_config = STRICT
    effort: Effort | None = None
    summary: Summary | None = None
    generate_summary: Summary | None = None  # deprecated spelling of summary
    mode: str | None = None
    context: str | None = None


class TextParam(BaseModel):
    model_config = STRICT
    format: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ResponseContext(BaseModel):
    """What decides a response's input tokens: shared by create and input_tokens."""

    model_config = STRICT

    input: str | list[Any] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    truncation: Literal["auto", "disabled"] | None = None


class CreateResponseRequest(ResponseContext):
    model: str
    max_output_tokens: Annotated[int, Field(ge=16)] | None = None
    max_tool_calls: Annotated[int, Field(ge=0)] | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    include: list[str] | None = None
    service_tier: str | None = None
    user: str | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    moderation: Any = None
    context_management: list[Any] | None = None
    seed: int | None = None  # extension (vLLM-style): the same request and seed give the same text


class InputTokensRequest(ResponseContext):
    model: str | None = None


class ConversationCreate(BaseModel):
    model_config = STRICT
    metadata: dict[str, str] | None = None
    items: Annotated[list[Any], Field(max_length=20)] | None = None


class ConversationUpdate(BaseModel):
    model_config = STRICT
    metadata: dict[str, str] | None


class ItemsCreate(BaseModel):
    model_config = STRICT
    items: Annotated[list[Any], Field(max_length=20)]


class MetadataUpdate(BaseModel):
    """``POST /v1/chat/completions/{id}``: only the metadata can change."""

    model_config = STRICT
    metadata: dict[str, str] | None


def metadata_problem(metadata: dict[str, str] | None, param: str = "metadata") -> str | None:
    """OpenAI's limits on metadata (16 pairs, keys up to 64 and values up to 512 characters)."""
    if not metadata:
        return None
    if len(metadata) > 16:
        return (f"Invalid '{param}': too many properties. Expected an object with at most 16 properties, "
                f"but got an object with {len(metadata)} properties instead.")
    for key, value in metadata.items():
        if len(key) > 64:
            return (f"Invalid '{param}': string too long. Expected a string with maximum length 64, "
                    f"but got a string with length {len(key)} instead.")
        if len(value) > 512:
            return (f"Invalid '{param}.{key}': string too long. Expected a string with maximum length 512, "
                    f"but got a string with length {len(value)} instead.")
    return None
