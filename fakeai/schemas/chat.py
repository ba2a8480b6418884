"""Wire model of ``POST /v1/chat/completions`` (request side).

Every field of the official CreateChatCompletionRequest is accepted; the ones
that change the simulation are typed and range-checked, the rest are accepted
as given. Messages stay plain dicts (checked by ``check_messages``) so the
engine can count them without copying.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .common import STRICT, Sampling

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class ChatCompletionRequest(Sampling):
    model_config = STRICT

    messages: Annotated[list[dict[str, Any]], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    response_format: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    moderation: Any = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


def check_messages(messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    """First problem in ``messages`` as (param, message), or None."""
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            return where, f"Invalid type for '{where}': expected an object, but got {_kind(msg)} instead."
        role = msg.get("role")
        if role is None:
            return f"{where}.role", f"Missing required parameter: '{where}.role'."
        if role not in ROLES:
            return (f"{where}.role", f"Invalid value: '{role}'. Supported values are: "
                    + ", ".join(f"'{r}'" for r in ROLES) + ".")
        content = msg.get("content")
        if "content" not in msg and role in ("system", "developer", "user", "tool"):
            return f"{where}.content", f"Missing required parameter: '{where}.content'."
        if content is None and role == "assistant" and not (msg.get("tool_calls") or msg.get("function_call")):
            return f"{where}.content", f"Missing required parameter: '{where}.content'."
        if content is not None and not isinstance(content, (str, list)):
            return (f"{where}.content", f"Invalid type for '{where}.content': expected one of a "
                    f"string or array of objects, but got {_kind(content)} instead.")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    return (f"{where}.content[{j}]",
                            f"Invalid value for '{where}.content[{j}]': expected an object with a 'type'.")
        calls = msg.get("tool_calls")
        if calls is not None and (not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls)):
            return (f"{where}.tool_calls", f"Invalid type for '{where}.tool_calls': expected an array of "
                    f"objects, but got {_kind(calls)} instead.")
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            return f"{where}.tool_call_id", f"Missing required parameter: '{where}.tool_call_id'."
        name = msg.get("name")
        if name is not None and not isinstance(name, str):
            return f"{where}.name", f"Invalid type for '{where}.name': expected a string, but got {_kind(name)} instead."
    return None


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a decimal"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return "null"
