"""Checking a fine-tuning training (or validation) file against the job's method and
counting its tokens with the base model's real tokenizer.

Formats, as OpenAI documents them:

* supervised: ``{"messages": [...]}`` with at least one assistant message (chat
  models), or ``{"prompt", "completion"}`` strings (completion-only models);
* dpo: ``{"input": {"messages": [...]}, "preferred_output": [...],
  "non_preferred_output": [...]}``, each output one assistant message;
* reinforcement: ``{"messages": [...]}`` ending with a user or developer message,
  plus any fields the grader reads.

A problem raises ``DataError`` naming the 1-based line; fewer than ``MIN_EXAMPLES``
(10, like OpenAI) training examples is refused too.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ..engine.errors import EngineError
from .jsonl import Lines

MIN_EXAMPLES = 10
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


class DataError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Summary:
    examples: int
    tokens: int  # over one pass of the file


def analyze(data: bytes, method: str, chat: bool, count_chat, count_text, min_examples: int) -> Summary:
    """Check every line of ``data`` and count its tokens. ``count_chat(messages, tools)``
    and ``count_text(s)`` count with the base model's tokenizer."""
    split, examples, tokens = Lines(), 0, 0
    for number, line in (*split.feed(data), *split.end()):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise DataError(f"line {number} is not valid JSON") from None
        if not isinstance(obj, dict):
            raise DataError(f"line {number} must be a JSON object")
        try:
            tokens += _example(obj, method, chat, count_chat, count_text)
        except (DataError, EngineError) as e:
            raise DataError(f"line {number} {e.message}") from None
        examples += 1
    if examples < min_examples:
        raise DataError(f"the file has {examples} example(s), but must have at least {min_examples} examples")
    return Summary(examples, tokens)


def _messages(value, where: str, need_assistant: bool = False) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise DataError(f"has an invalid '{where}': it must be a non-empty array of messages")
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            role = m.get("role") if isinstance(m, dict) else None
            raise DataError(f"has an invalid '{where}[{i}]': unrecognized role {role!r}")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise DataError(f"has an invalid '{where}[{i}].content': it must be a string or an array of parts")
        weight = m.get("weight")
        if weight is not None and (m["role"] != "assistant" or weight not in (0, 1) or isinstance(weight, bool)):
            raise DataError(f"has an invalid '{where}[{i}].weight': only assistant messages take a weight of 0 or 1")
    if need_assistant and not any(m["role"] == "assistant" for m in value):
        raise DataError(f"has no assistant message in '{where}': there is nothing to train on")
    return value


def _example(obj: dict, method: str, chat: bool, count_chat, count_text) -> int:
    if method == "dpo":
        if not isinstance(obj.get("input"), dict):
            raise DataError("is missing 'input' (an object with 'messages') for a preference (dpo) example")
        msgs = _messages(obj["input"].get("messages"), "input.messages")
        n = count_chat(msgs, obj["input"].get("tools"))
        for key in ("preferred_output", "non_preferred_output"):
            out = _messages(obj.get(key), key)
            if len(out) != 1 or out[0]["role"] != "assistant":
                raise DataError(f"has an invalid '{key}': it must hold exactly one assistant message")
            n += count_chat(out, None)
        return n
    if method == "reinforcement":
        msgs = _messages(obj.get("messages"), "messages")
        if msgs[-1]["role"] not in ("user", "developer"):
            raise DataError("has an invalid 'messages': a reinforcement example ends with a user or "
                            "developer message")
        return count_chat(msgs, obj.get("tools"))
    if "messages" in obj:
        if not chat:
            raise DataError("is a chat example, but the model takes 'prompt' and 'completion' examples")
        return count_chat(_messages(obj["messages"], "messages", need_assistant=True), obj.get("tools"))
    if "prompt" in obj or "completion" in obj:
        if chat:
            raise DataError("is a prompt/completion example, but the model takes chat examples ('messages')")
        p, c = obj.get("prompt"), obj.get("completion")
        if not isinstance(p, str) or not isinstance(c, str):
            raise DataError("has an invalid example: 'prompt' and 'completion' must be strings")
        return count_text(p) + count_text(c)
    raise DataError("is missing 'messages'" if chat else "is missing 'prompt' and 'completion'")
