"""What one generated choice consists of, and how its token sequence is laid out.

A choice is one sequence of tokens, decoded one per step:

    [ reasoning tokens ][ body tokens ]

The body is content text, a JSON document, or tool calls. For tool calls the
body holds each call's name tokens then its argument tokens; a call's header
(id, type, name) goes out on the step of its last name token, each argument
token after that is one argument fragment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tools import ToolPlan


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What kind of body a request asks for (built by the API layer from the request)."""

    tools: ToolPlan | None = None
    json_schema: dict[str, Any] | None = None  # already checked
    json_object: bool = False
    reasoning_effort: str | None = None  # None: the model's default
    prediction: str | None = None
    top_logprobs: int | None = None  # None: no logprobs


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    header_step: int  # step on which the header is sent
    args_start: int  # token index range of the argument fragments
    args_end: int


@dataclass(slots=True)
class Choice:
    ids: list[int]
    texts: list[str]
    finish_reason: str
    reasoning: int = 0  # the first `reasoning` tokens are reasoning
    tool_calls: list[ToolCall] = field(default_factory=list)
    legacy_function: bool = False  # answer with message.function_call
    logprobs: list[dict] | None = None  # one entry per body token
    accepted_prediction: int = 0
    rejected_prediction: int = 0
    audio_tokens: int = 0  # spoken output (chat audio), billed beside the text tokens

    @property
    def text(self) -> str:
        """The content text (empty for tool calls)."""
        return "" if self.tool_calls else "".join(self.texts[self.reasoning:])

    @property
    def content(self) -> str | None:
        return None if self.tool_calls else "".join(self.texts[self.reasoning:])

    @property
    def reasoning_text(self) -> str:
        return "".join(self.texts[: self.reasoning])
