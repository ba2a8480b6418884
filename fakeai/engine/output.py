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
class Script:
    """Output forced on a request (a scenario, or a fault) instead of what the engine would
    write: still tokenized, cut at the budget and paced like generated text."""

    content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None  # the answer is a refusal message (chat ``message.refusal``)
    tool_calls: tuple[tuple[str, str], ...] = ()  # (function name, arguments JSON text)
    ttft: float | None = None  # seconds; None: the latency model's
    itl: float | None = None
    usage: tuple[tuple[str, int], ...] = ()  # reported usage overrides (prompt_tokens, ...)
    truncate_tools: bool = False  # tool-call arguments end halfway (broken JSON)

    @property
    def writes(self) -> bool:
        """It decides the text (else the engine generates and the script only adjusts)."""
        return (self.content is not None or self.reasoning is not None or self.refusal is not None
                or bool(self.tool_calls))


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What kind of body a request asks for (built by the API layer from the request)."""

    tools: ToolPlan | None = None
    json_schema: dict[str, Any] | None = None  # already checked
    json_object: bool = False
    reasoning_effort: str | None = None  # None: the model's default
    prediction: str | None = None
    top_logprobs: int | None = None  # None: no logprobs
    script: Script | None = None  # forced output (scenarios, faults)


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
    refusal: bool = False  # the body is a refusal message, not content

    @property
    def text(self) -> str:
        """The content text (empty for tool calls)."""
        return "" if self.tool_calls else "".join(self.texts[self.reasoning:])

    @property
    def content(self) -> str | None:
        return None if self.tool_calls or self.refusal else "".join(self.texts[self.reasoning:])

    @property
    def refusal_text(self) -> str | None:
        return "".join(self.texts[self.reasoning:]) if self.refusal else None

    @property
    def reasoning_text(self) -> str:
        return "".join(self.texts[: self.reasoning])
