"""Responses API input items: checked, given ids, and read as chat messages for counting.

An input is a string (one user message) or a list of items. Items are stored in
the shape the API lists them in (``input_items``, conversation items): a message
gets an id, a status and a content-part list; an assistant message's text parts
are ``output_text`` parts. The token count reads the items as the equivalent chat
messages, so a Responses prompt costs what the same chat prompt costs.
"""

from __future__ import annotations

import re
from typing import Any

from ..engine.errors import EngineError
from ..engine.prompt import content_text
from .common import new_id
from .errors import APIError

ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_OUTPUT_PARTS = ("output_text", "refusal")
_PART_TYPES = _INPUT_PARTS + _OUTPUT_PARTS + ("summary_text", "reasoning_text", "text")
_IMAGE_DETAILS = ("low", "high", "auto", "original")


def _bad(param: str, message: str, code: str | None = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _missing(param: str) -> APIError:
    return _bad(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")


def _part(part: Any, where: str, role: str) -> dict:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise _bad(where, f"Invalid type for '{where}': expected an object with a 'type'.", "invalid_type")
    kind = part["type"]
    if kind not in _PART_TYPES:
        allowed = ", ".join(f"'{t}'" for t in _PART_TYPES[:-1])
        raise _bad(f"{where}.type", f"Invalid value: '{kind}'. Supported values are: {allowed}.")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        if not isinstance(part.get("text"), str):
            raise _missing(f"{where}.text")
        if kind == "text":  # chat-style part: the Responses spelling
            kind = "output_text" if role == "assistant" else "input_text"
        out = {**part, "type": kind}
        if kind == "output_text":
            out.setdefault("annotations", [])
            out.setdefault("logprobs", [])
        return out
    if kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            raise _missing(f"{where}.refusal")
        return dict(part)
    if kind == "input_image":
        url, file_id = part.get("image_url"), part.get("file_id")
        if not isinstance(url, str) and not isinstance(file_id, str):
            raise _bad(where, f"Invalid '{where}': an input_image needs an 'image_url' or a 'file_id'.",
                       "missing_required_parameter")
        if isinstance(url, str) and not url.startswith("data:") and not url.lower().startswith(("http://", "https://")):
            raise _bad(f"{where}.image_url", f"Invalid '{where}.image_url'. Expected a valid URL, but got a value "
                       "without the 'data:' prefix or an http(s) scheme.", "invalid_image_url")
        detail = part.get("detail", "auto")
        if detail not in _IMAGE_DETAILS:
            raise _bad(f"{where}.detail", f"Invalid value: '{detail}'. Supported values are: 'low', 'high', "
                       "'auto' and 'original'.")
        return {**part, "detail": detail}
    if kind == "input_file":
        if not any(isinstance(part.get(k), str) for k in ("file_id", "file_data", "file_url")):
            raise _bad(where, f"Invalid '{where}': an input_file needs a 'file_id', 'file_data' or 'file_url'.",
                       "missing_required_parameter")
        return dict(part)
    if not isinstance(part.get("input_audio"), dict):  # input_audio
        raise _missing(f"{where}.input_audio")
    return dict(part)


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role is None:
        raise _missing(f"{where}.role")
    if role not in ROLES:
        raise _bad(f"{where}.role", f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', "
                   "'system' and 'developer'.")
    content = item.get("content")
    if content is None:
        raise _missing(f"{where}.content")
    if isinstance(content, str):
        part = ({"type": "output_text", "text": content, "annotations": [], "logprobs": []}
                if role == "assistant" else {"type": "input_text", "text": content})
        parts = [part]
    elif isinstance(content, list):
        parts = [_part(p, f"{where}.content[{j}]", role) for j, p in enumerate(content)]
    else:
        raise _bad(f"{where}.content", f"Invalid type for '{where}.content': expected one of a string or "
                   "array of objects.", "invalid_type")
    out = {"id": item.get("id") or new_id("msg_"), "type": "message", "role": role,
           "status": item.get("status") or "completed", "content": parts}
    if item.get("phase") is not None:
        out["phase"] = item["phase"]
    return out


def _strings(item: dict, where: str, *keys: str) -> None:
    for key in keys:
        if not isinstance(item.get(key), str):
            if key not in item:
                raise _missing(f"{where}.{key}")
            raise _bad(f"{where}.{key}", f"Invalid type for '{where}.{key}': expected a string.", "invalid_type")


def normalize_item(item: Any, where: str) -> dict:
    """One input item in its stored shape (an id added), or a 400 naming what is wrong."""
    if not isinstance(item, dict):
        raise _bad(where, f"Invalid type for '{where}': expected an object.", "invalid_type")
    kind = item.get("type", "message" if "role" in item else None)
    if kind is None:
        raise _missing(f"{where}.type")
    if not isinstance(kind, str):
        raise _bad(f"{where}.type", f"Invalid type for '{where}.type': expected a string.", "invalid_type")
    if kind == "message":
        return _message(item, where)
    if kind == "function_call":
        _strings(item, where, "call_id", "name", "arguments")
        return {**item, "id": item.get("id") or new_id("fc_"), "status": item.get("status") or "completed"}
    if kind == "function_call_output":
        _strings(item, where, "call_id")
        if not isinstance(item.get("output"), (str, list)):
            raise _missing(f"{where}.output")
        return {**item, "id": item.get("id") or new_id("fco_"), "status": item.get("status") or "completed"}
    if kind == "reasoning":
        return {**item, "id": item.get("id") or new_id("rs_"), "summary": item.get("summary") or []}
    if kind == "item_reference":
        _strings(item, where, "id")
        return dict(item)
    # other hosted-tool items (web_search_call, computer_call_output, ...): kept as given
    return {**item, "id": item.get("id") or new_id("item_")}


def normalize(value: str | list | None, param: str = "input") -> list[dict]:
    if value is None:
        return []
    if isinstance(value, str):
        return [_message({"role": "user", "content": value}, param)]
    return [normalize_item(item, f"{param}[{i}]") for i, item in enumerate(value)]


def resolve_references(items: list[dict], known: dict[str, dict]) -> list[dict]:
    """``item_reference`` items replaced by the items they name (from the context)."""
    out = []
    for i, it in enumerate(items):
        if it.get("type") == "item_reference":
            ref = known.get(it["id"])
            if ref is None:
                raise APIError(404, f"Item with id '{it['id']}' not found.", param=f"input[{i}].id")
            out.append(ref)
        else:
            out.append(it)
    return out


def check_tool_outputs(context: list[dict], items: list[dict]) -> None:
    """Every ``function_call_output`` answers a ``function_call`` of the context, as OpenAI checks."""
    calls = {it.get("call_id") for it in (*context, *items) if it.get("type") == "function_call"}
    for i, it in enumerate(items):
        if it.get("type") == "function_call_output" and it["call_id"] not in calls:
            raise APIError(400, f"No tool call found for function call output with call_id {it['call_id']}.",
                           param=f"input[{i}]")


# -- as chat messages ----------------------------------------------------------------

def _chat_part(part: dict) -> dict:
    kind = part.get("type")
    if kind == "input_image":
        url = part.get("image_url") or f"https://files.openai.invalid/{part.get('file_id')}"
        detail = part.get("detail", "auto")  # "original" (full resolution) costs what "high" does
        return {"type": "image_url", "image_url": {"url": url, "detail": "high" if detail == "original" else detail}}
    if kind == "input_file":
        data = part.get("file_data")
        if isinstance(data, str) and not data.startswith("data:"):  # raw base64: a PDF most likely
            data = "data:application/pdf;base64," + data
        spec = {"file_data": data} if data else {"file_id": part.get("file_id") or part.get("file_url")}
        return {"type": "file", "file": spec}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    return part  # text kinds: content_text reads their "text"


def _output_text(output: Any) -> str:
    return output if isinstance(output, str) else content_text(output)


def _search_text(item: dict) -> str:
    return "\n\n".join(r.get("text", "") for r in item.get("results") or () if isinstance(r, dict))


def to_messages(items: list[dict]) -> list[dict]:
    """The chat messages equivalent to ``items`` (reasoning and unknown items cost nothing).
    Each message carries ``_at``, the index of the item it comes from."""
    out: list[dict] = []
    for k, it in enumerate(items):
        kind = it.get("type")
        if kind == "message":
            out.append({"role": it["role"], "content": [_chat_part(p) for p in it["content"]], "_at": k})
        elif kind == "function_call":
            call = {"type": "function", "function": {"name": it["name"], "arguments": it["arguments"]}}
            prev = out[-1] if out else None
            if prev is not None and prev.get("_calls") and prev["_at"] == k - 1:  # parallel calls: one turn
                prev["tool_calls"].append(call)
                prev["_at"] = k
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call], "_calls": True, "_at": k})
        elif kind == "function_call_output":
            out.append({"role": "tool", "content": _output_text(it["output"]), "tool_call_id": it["call_id"],
                        "_at": k})
        elif kind == "file_search_call" and it.get("results"):
            out.append({"role": "tool", "content": _search_text(it), "tool_call_id": it["id"], "_at": k})
    return out


def user_text(items: list[dict]) -> str:
    """The last user message's text: what the answer is about."""
    for it in reversed(items):
        if it.get("type") == "message" and it.get("role") == "user":
            return content_text(it["content"])
    return ""


_MSG_PARAM = re.compile(r"^messages\[(\d+)\](\.content\[\d+\])?(.*)$")
_RENAME = {".image_url.url": ".image_url", ".file.file_data": ".file_data", ".file": "",
           ".image_url": ".image_url"}


def prompt_ids(engine, model, messages: list[dict], origins: list[str], tools: list[dict] | None) -> list[int]:
    """The prompt's token ids (as chat counts them), with a media error's ``param`` pointing
    into the request (``origins[i]`` names where message ``i`` came from)."""
    try:
        return engine.chat_prompt(model, messages, tools)
    except EngineError as e:
        m = _MSG_PARAM.match(e.param or "")
        if m:
            i = int(m.group(1))
            rest = _RENAME.get(m.group(3), m.group(3))
            e.param = origins[i] + (m.group(2) or "") + rest
            e.message = e.message.replace(f"messages[{i}]", origins[i])
        raise
