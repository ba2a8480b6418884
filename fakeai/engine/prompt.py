"""Prompt token counting, following OpenAI's published chat overhead rules.

Every message costs 3 tokens of framing plus its role and content; a ``name``
costs 1 more plus its text; the reply is primed with 3 tokens. Text parts
count their text; image, audio, video and file parts cost what
``multimodal.part_cost`` says (docs/multimodal.md); tool calls count their
function name and arguments; tool definitions count their JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import EngineError
from .multimodal import part_cost
from .tokenizer import Tokenizer

# content-part kind -> the model capability it needs
_NEEDS = {"image": "vision", "video": "video", "audio": "audio", "file": "vision"}
TOOLS_OVERHEAD = 12  # framing of the tool definitions block

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


def media_tokens(msg: dict[str, Any], where: str, family: str, capabilities) -> int:
    """Tokens of a message's non-text parts; 400 for a kind the model cannot take."""
    content = msg.get("content")
    if not isinstance(content, list):
        return 0
    n = 0
    for j, part in enumerate(content):
        cost = part_cost(part, family, param=f"{where}.content[{j}]")
        if cost is None:
            continue
        need = _NEEDS.get(cost.kind)
        if capabilities is not None and need and not getattr(capabilities, need, False):
            raise EngineError(f"Invalid content type. {part.get('type')} is only supported by models "
                              f"with {need} input.", param=f"{where}.content[{j}].type",
                              code="invalid_content_type")
        n += cost.tokens
    return n


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


def count_chat(tok: Tokenizer, messages: list[dict[str, Any]], family: str = "gpt-4o",
               capabilities=None, tools: list[dict] | None = None) -> int:
    n = REPLY_PRIMING
    for i, m in enumerate(messages):
        n += count_message(tok, m) + media_tokens(m, f"messages[{i}]", family, capabilities)
    if tools:
        n += TOOLS_OVERHEAD + tok.count(orjson.dumps(tools).decode())
    return n


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return content_text(msg.get("content"))
    return ""
