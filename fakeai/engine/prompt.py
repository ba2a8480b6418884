"""Prompt token counting, following OpenAI's published chat overhead rules.

Every message costs 3 tokens of framing plus its role and content; a ``name``
costs 1 more plus its text; the reply is primed with 3 tokens. Content parts
count their text; tool calls count their function name and arguments.
"""

from __future__ import annotations

from typing import Any

from .tokenizer import Tokenizer

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text of its parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if isinstance(part, dict):
            t = part.get("text")
            if isinstance(t, str):
                texts.append(t)
            elif isinstance(part.get("refusal"), str):
                texts.append(part["refusal"])
    return "\n".join(texts)


def count_message(tok: Tokenizer, msg: dict[str, Any]) -> int:
    n = TOKENS_PER_MESSAGE + tok.count(str(msg.get("role", "")))
    n += tok.count(content_text(msg.get("content")))
    name = msg.get("name")
    if isinstance(name, str) and name:
        n += TOKENS_PER_NAME + tok.count(name)
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            n += tok.count(str(fn.get("name", ""))) + tok.count(str(fn.get("arguments", "")))
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        n += tok.count(str(fc.get("name", ""))) + tok.count(str(fc.get("arguments", "")))
    return n


def count_chat(tok: Tokenizer, messages: list[dict[str, Any]]) -> int:
    return sum(count_message(tok, m) for m in messages) + REPLY_PRIMING


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return content_text(msg.get("content"))
    return ""
