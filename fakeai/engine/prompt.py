"""Prompt token ids and counts, following OpenAI's published chat overhead rules.

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
# Ids standing for the chat template's special tokens. Only their stability matters: they
# make the prompt a token sequence whose KV blocks can be hashed and cached.
_START, _SEP, _END, _NAME, _TOOLS = 1, 2, 3, 4, 5


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


def _check_media(part: dict, cost, where: str, capabilities) -> None:
    need = _NEEDS.get(cost.kind)
    if capabilities is not None and need and not getattr(capabilities, need, False):
        raise EngineError(f"Invalid content type. {part.get('type')} is only supported by models "
                          f"with {need} input.", param=f"{where}.type", code="invalid_content_type")


def media_ids(msg: dict[str, Any], where: str, family: str, capabilities) -> list[int]:
    """Placeholder ids of a message's non-text parts (as many as the part costs, all derived
    from the part itself: the same image is the same tokens); 400 for a kind the model
    cannot take."""
    content = msg.get("content")
    if not isinstance(content, list):
        return []
    out: list[int] = []
    for j, part in enumerate(content):
        cost = part_cost(part, family, param=f"{where}.content[{j}]")
        if cost is None:
            continue
        _check_media(part, cost, f"{where}.content[{j}]", capabilities)
        out += [hash(orjson.dumps(part)) & 0x7FFFFFFF] * cost.tokens
    return out


def message_ids(tok: Tokenizer, msg: dict[str, Any], media: list[int] = ()) -> list[int]:
    """A message as the template lays it out: START role SEP content [media] [NAME name]
    [tool calls] END (3 framing tokens, 1 more with a name)."""
    enc = tok.encode
    out = [_START, *enc(str(msg.get("role", ""))), _SEP]
    text = content_text(msg.get("content"))
    if text:
        out += enc(text)
    out += media
    name = msg.get("name")
    if isinstance(name, str) and name:
        out.append(_NAME)
        out += enc(name)
    calls = [c.get("function") for c in msg.get("tool_calls") or () if isinstance(c, dict)]
    fc = msg.get("function_call")
    for fn in [*calls, fc]:
        if isinstance(fn, dict):
            out += enc(str(fn.get("name", "")))
            out += enc(str(fn.get("arguments", "")))
    out.append(_END)
    return out


def chat_ids(tok: Tokenizer, messages: list[dict[str, Any]], family: str = "gpt-4o",
             capabilities=None, tools: list[dict] | None = None) -> list[int]:
    """The chat prompt's token ids: tool definitions, the messages, the reply priming
    (START "assistant" SEP, so a later turn that includes this reply shares the prefix)."""
    out: list[int] = []
    if tools:
        out += [_TOOLS] * TOOLS_OVERHEAD
        out += tok.encode(orjson.dumps(tools).decode())
    for i, m in enumerate(messages):
        out += message_ids(tok, m, media_ids(m, f"messages[{i}]", family, capabilities))
    out += [_START, (tok.encode("assistant") or [_SEP])[0], _SEP]  # REPLY_PRIMING tokens
    return out


def count_chat(tok: Tokenizer, messages: list[dict[str, Any]], family: str = "gpt-4o",
               capabilities=None, tools: list[dict] | None = None) -> int:
    return len(chat_ids(tok, messages, family, capabilities, tools))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return content_text(msg.get("content"))
    return ""
