"""Wire model of Anthropic's ``POST /v1/messages`` and ``/v1/messages/count_tokens`` (request side).

The scalar fields, ``thinking`` and ``tool_choice`` are pydantic models: Anthropic's
own validation is pydantic, so a bad value reads the same here ("thinking.enabled.
budget_tokens: Input should be greater than or equal to 1024"). Messages, system
blocks and tools stay plain dicts, checked by the functions below with the same
dotted locations, so long conversations are not copied into objects.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .common import STRICT

Display = Literal["summarized", "omitted"]


class ThinkingEnabled(BaseModel):
    model_config = STRICT
    type: Literal["enabled"]
    budget_tokens: Annotated[int, Field(ge=1024)]
    display: Display | None = None


class ThinkingAdaptive(BaseModel):
    model_config = STRICT
    type: Literal["adaptive"]
    display: Display | None = None


class ThinkingDisabled(BaseModel):
    model_config = STRICT
    type: Literal["disabled"]


Thinking = Annotated[ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled, Field(discriminator="type")]


class _ToolChoice(BaseModel):
    model_config = STRICT
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAuto(_ToolChoice):
    type: Literal["auto"]


class ToolChoiceAny(_ToolChoice):
    type: Literal["any"]


class ToolChoiceTool(_ToolChoice):
    type: Literal["tool"]
    name: str


class ToolChoiceNone(BaseModel):
    model_config = STRICT
    type: Literal["none"]


ToolChoice = Annotated[ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone,
                       Field(discriminator="type")]


class OutputConfig(BaseModel):
    model_config = STRICT
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: dict[str, Any] | None = None


class CountTokensRequest(BaseModel):
    """What decides the input tokens: the fields count_tokens takes."""

    model_config = STRICT

    model: str
    messages: list[Any]
    system: str | list[Any] | None = None
    tools: list[Any] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    # accepted and without effect on the simulation
    mcp_servers: list[Any] | None = None
    context_management: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: Annotated[int, Field(ge=1)]
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    metadata: dict[str, Any] | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    container: Any = None
    inference_geo: str | None = None
    speed: Literal["standard", "fast"] | None = None


# -- messages -------------------------------------------------------------------------

ROLES = ("user", "assistant")
_USER_BLOCKS = ("text", "image", "document", "tool_result")
_ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking")
_ALL_BLOCKS = _USER_BLOCKS + _ASSISTANT_BLOCKS[1:]
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")

Problem = tuple[str, str]  # (location, message): rendered "location: message"


def _one_of(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _tagged(obj: Any, where: str, tags: tuple[str, ...]) -> tuple[str | None, Problem | None]:
    """The ``type`` tag of a block, or the problem with it."""
    if not isinstance(obj, dict):
        return None, (where, "Input should be a valid dictionary or object to extract fields from")
    tag = obj.get("type")
    if tag is None:
        return None, (where, "Unable to extract tag using discriminator 'type'")
    if tag not in tags:
        return None, (where, (f"Input tag '{tag}' found using 'type' does not match any of the expected "
                              f"tags: {', '.join(repr(t) for t in tags)}"))
    return tag, None


_KIND_NAMES = {str: "a valid string", dict: "a valid dictionary", list: "a valid list",
               bool: "a valid boolean", (str, list): "a valid string or a valid list"}


def _field(obj: dict, key: str, where: str, kind: type | tuple, required: bool = True) -> Problem | None:
    if key not in obj:
        return (f"{where}.{key}", "Field required") if required else None
    value = obj[key]
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        return f"{where}.{key}", f"Input should be {_KIND_NAMES[kind]}"
    return None


def _source(block: dict, where: str, kinds: dict[str, tuple]) -> Problem | None:
    """An image or document ``source``: tagged by its type, each with its required fields."""
    if (p := _field(block, "source", where, dict)) is not None:
        return p
    src, at = block["source"], f"{where}.source"
    tag, p = _tagged(src, at, tuple(kinds))
    if p is not None:
        return p
    at = f"{at}.{tag}"
    for key, kind in kinds[tag]:
        if (p := _field(src, key, at, kind)) is not None:
            return p
    if tag == "base64":
        allowed = IMAGE_TYPES if block["type"] == "image" else ("application/pdf",)
        if src["media_type"] not in allowed:
            return f"{at}.media_type", f"Input should be {_one_of(allowed)}"
    if tag == "text" and src["media_type"] != "text/plain":
        return f"{at}.media_type", "Input should be 'text/plain'"
    return None


_B64 = (("media_type", str), ("data", str))
_IMAGE_SOURCES = {"base64": _B64, "url": (("url", str),)}
_DOCUMENT_SOURCES = {"base64": _B64, "text": _B64, "url": (("url", str),),
                     "content": (("content", (str, list)),)}


def _parts(parts: Any, where: str, tags: tuple[str, ...]) -> Problem | None:
    """Nested blocks (a tool result's or a content document's), each checked like a message's."""
    for k, part in enumerate(parts if isinstance(parts, list) else ()):
        tag, p = _tagged(part, f"{where}.{k}", tags)
        if p is not None or (p := _block(part, tag, f"{where}.{k}")) is not None:
            return p
    return None


def _block(block: dict, tag: str, where: str) -> Problem | None:
    at = f"{where}.{tag}"
    if tag == "text":
        if (p := _field(block, "text", at, str)) is not None:
            return p
        if not block["text"]:
            return "messages", "text content blocks must be non-empty"
    elif tag == "image":
        return _source(block, at, _IMAGE_SOURCES)
    elif tag == "document":
        if (p := _source(block, at, _DOCUMENT_SOURCES)) is not None:
            return p
        return _parts(block["source"].get("content"), f"{at}.source.content.content", ("text", "image"))
    elif tag == "tool_use":
        for key, kind in (("id", str), ("name", str), ("input", dict)):
            if (p := _field(block, key, at, kind)) is not None:
                return p
    elif tag == "tool_result":
        for key, kind, required in (("tool_use_id", str, True), ("is_error", bool, False),
                                    ("content", (str, list), False)):
            if (p := _field(block, key, at, kind, required)) is not None:
                return p
        return _parts(block.get("content"), f"{at}.content", ("text", "image", "document"))
    elif tag == "thinking":
        return _field(block, "thinking", at, str) or _field(block, "signature", at, str)
    elif tag == "redacted_thinking":
        return _field(block, "data", at, str)
    return None


def check_messages(messages: list[Any]) -> Problem | None:
    """First problem in ``messages`` (shape, then the tool_use / tool_result pairing), or None.

    Consecutive turns of one role are allowed (Anthropic merges them); a ``tool_result``
    must answer a ``tool_use`` of the message right before it, and an assistant's
    ``tool_use`` must be answered by the message right after it when there is one.
    """
    if not messages:
        return "messages", "at least one message is required"
    pending: set[str] = set()  # tool_use ids of the previous message
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(msg, dict):
            return where, "Input should be a valid dictionary or object to extract fields from"
        role = msg.get("role")
        if role is None:
            return f"{where}.role", "Field required"
        if role == "system":
            return "messages", ('Unexpected role "system". The Messages API accepts a top-level `system` '
                                'parameter, not "system" as an input message role.')
        if role not in ROLES:
            return f"{where}.role", f"Input should be {_one_of(ROLES)}"
        if "content" not in msg:
            return f"{where}.content", "Field required"
        content = msg["content"]
        if not isinstance(content, (str, list)):
            return f"{where}.content", "Input should be a valid string or a valid list"
        if not content and not (role == "assistant" and i == len(messages) - 1):
            return where, ("all messages must have non-empty content except for the optional final "
                           "assistant message")
        allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
        uses, answered = [], set()
        for j, block in enumerate(content if isinstance(content, list) else ()):
            at = f"{where}.content.{j}"
            tag, p = _tagged(block, at, _ALL_BLOCKS)
            if p is not None or (p := _block(block, tag, at)) is not None:
                return p
            if tag not in allowed:
                return at, f"`{tag}` blocks are not allowed in `{role}` messages"
            if tag == "tool_use":
                uses.append(block["id"])
            elif tag == "tool_result":
                if block["tool_use_id"] not in pending:
                    return at, (f"unexpected `tool_use_id` found in `tool_result` blocks: {block['tool_use_id']}. "
                                "Each `tool_result` block must have a corresponding `tool_use` block in "
                                "the previous message.")
                answered.add(block["tool_use_id"])
        if pending - answered:
            return f"messages.{i - 1}", ("`tool_use` ids were found without `tool_result` blocks immediately "
                                         f"after: {', '.join(sorted(pending - answered))}. Each `tool_use` "
                                         "block must have a corresponding `tool_result` block in the next message.")
        pending = set(uses)
    return None


def check_system(system: str | list[Any] | None) -> Problem | None:
    for j, block in enumerate(system if isinstance(system, list) else ()):
        _, p = _tagged(block, f"system.{j}", ("text",))
        if p is not None or (p := _field(block, "text", f"system.{j}", str)) is not None:
            return p
    return None


def check_tools(tools: list[Any] | None) -> Problem | None:
    """Client tools: ``{name, description?, input_schema, strict?}`` with ``type`` absent or "custom".
    Anthropic's own (server and versioned client) tools are accepted as given."""
    names = set()
    for k, tool in enumerate(tools or ()):
        at = f"tools.{k}"
        if not isinstance(tool, dict):
            return at, "Input should be a valid dictionary or object to extract fields from"
        if tool.get("type") not in (None, "custom"):
            if not isinstance(tool.get("type"), str) or not isinstance(tool.get("name"), str):
                return at, "Input should be a valid tool definition with a string `type` and `name`"
            names.add(tool["name"])
            continue
        at += ".custom"
        for key, kind, required in (("name", str, True), ("input_schema", dict, True),
                                    ("description", str, False), ("strict", bool, False)):
            if (p := _field(tool, key, at, kind, required)) is not None:
                return p
        if not _TOOL_NAME.match(tool["name"]):
            return f"{at}.name", "String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
        if tool["input_schema"].get("type") != "object":
            return f"{at}.input_schema.type", "Input should be 'object'"
        if tool["name"] in names:
            return "tools", f"Tool names must be unique. Duplicate: {tool['name']}"
        names.add(tool["name"])
    return None
