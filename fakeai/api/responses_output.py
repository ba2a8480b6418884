"""A generation as Responses output items, and the Response object around them.

Output order: a ``file_search_call`` (when the model searched), a ``reasoning`` item
(reasoning models), then either the function calls or one assistant message. The
``trace`` kept beside them is what a stream replays: the token text of each decode
step, how many of them are reasoning, and each call's step range.
"""

from __future__ import annotations

import base64
import os
import zlib

from ..engine.core import Generation
from ..schemas.responses import CreateResponseRequest
from .common import new_id
from .responses_plan import Plan

INCOMPLETE = {"reason": "max_output_tokens"}


def usage(gen: Generation) -> dict:
    o = gen.usage_override or {}  # a scenario's reported usage
    p = o.get("prompt_tokens", gen.prompt_tokens)
    out = o.get("completion_tokens", gen.completion_tokens)
    return {
        "input_tokens": p,
        "input_tokens_details": {"cached_tokens": o.get("cached_tokens", gen.cached_tokens), "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": o.get("reasoning_tokens", gen.reasoning_tokens)},
        "total_tokens": p + out,
    }


def _encrypted(text: str) -> str:
    """An opaque blob standing for the reasoning, as OpenAI returns on request."""
    return "gAAAAA" + base64.urlsafe_b64encode(os.urandom(12) + zlib.compress(text.encode())).decode()


def file_search_item(query: str, results: list[dict]) -> dict:
    """The search as stored for counting: every result with its text."""
    return {"id": new_id("fs_"), "type": "file_search_call", "status": "completed", "queries": [query],
            "results": [{"file_id": r.get("file_id"), "filename": r.get("filename"), "score": r.get("score"),
                         "attributes": r.get("attributes") or {}, "text": _result_text(r)} for r in results]}


def _result_text(r: dict) -> str:
    content = r.get("content")
    if isinstance(content, list):
        return "\n".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(r.get("text") or content or "")


def public_search(item: dict, include: list[str]) -> dict:
    """A file_search_call as the API shows it: results only with include=file_search_call.results."""
    return item if "file_search_call.results" in include else {**item, "results": None}


def output_items(gen: Generation, plan: Plan, search: dict | None, include: list[str]) -> tuple[list[dict], dict]:
    c = gen.choices[0]
    cut = c.finish_reason == "length"
    items: list[dict] = []
    if search is not None:
        items.append(public_search(search, include))
    if c.reasoning:
        summary = [{"type": "summary_text", "text": c.reasoning_text}] if plan.summary else []
        rs = {"id": new_id("rs_"), "type": "reasoning", "summary": summary}
        if "reasoning.encrypted_content" in include:
            rs["encrypted_content"] = _encrypted(c.reasoning_text)
        items.append(rs)
    if c.tool_calls:
        last = c.tool_calls[-1]
        for call in c.tool_calls:
            items.append({"id": new_id("fc_"), "type": "function_call",
                          "status": "incomplete" if cut and call is last else "completed",
                          "arguments": call.arguments, "call_id": call.id, "name": call.name})
    elif len(c.texts) > c.reasoning:
        text = c.text
        cited = {}
        for r in (search or {}).get("results") or ():
            cited.setdefault(r["file_id"], r.get("filename") or "")
        notes = [{"type": "file_citation", "file_id": f, "filename": n, "index": len(text)}
                 for f, n in list(cited.items())[:3]]
        part = ({"type": "refusal", "refusal": text} if c.refusal else
                {"type": "output_text", "annotations": notes, "logprobs": [], "text": text})
        items.append({"id": new_id("msg_"), "type": "message", "status": "incomplete" if cut else "completed",
                      "content": [part], "role": "assistant"})
    trace = {"texts": c.texts, "r": c.reasoning,
             "calls": [[t.header_step, t.args_start, t.args_end] for t in c.tool_calls]}
    return items, trace


def status_of(gen: Generation) -> tuple[str, dict | None]:
    return ("incomplete", INCOMPLETE) if gen.choices[0].finish_reason == "length" else ("completed", None)


def body(plan: Plan, req: CreateResponseRequest, meta: dict, status: str, output: list[dict],
         use: dict | None = None, completed_at: int | None = None, incomplete: dict | None = None) -> dict:
    out = {
        "id": meta["id"],
        "object": "response",
        "created_at": meta["created_at"],
        "status": status,
        "background": bool(req.background),
        "completed_at": completed_at,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": req.max_tool_calls,
        "model": req.model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "prompt_cache_key": req.prompt_cache_key,
        "reasoning": plan.reasoning_echo,
        "safety_identifier": req.safety_identifier,
        "service_tier": "default",
        "store": req.store is not False,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "text": plan.text_echo,
        "tool_choice": plan.tool_choice,
        "tools": plan.tools_echo,
        "top_logprobs": req.top_logprobs or 0,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "truncation": req.truncation or "disabled",
        "metadata": req.metadata or {},
        "conversation": {"id": plan.conversation} if plan.conversation else None,
    }
    if req.user is not None:
        out["user"] = req.user
    if use is not None:
        out["usage"] = use
    return out
