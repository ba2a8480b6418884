"""Composing one choice: reasoning, then a body of text, JSON or tool calls.

Every piece is token ids from the model's tokenizer, cut at the completion
budget, so ``usage`` always equals what is sent.
"""

from __future__ import annotations

import codecs
import difflib
import os
import random

import orjson

from . import jsonschema_gen, tools
from .logprobs import chat_logprobs
from .output import Choice, OutputSpec, Script, ToolCall
from .text import TextGenerator

# reasoning length per effort, relative to the configured medium budget
EFFORT_SCALE = {"none": 0.0, "minimal": 0.1, "low": 0.35, "medium": 1.0, "high": 2.5, "xhigh": 4.0}

# a JSON object for response_format json_object when no schema is given
_ANY_OBJECT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"}, "summary": {"type": "string"},
        "items": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4},
        "score": {"type": "number", "minimum": 0, "maximum": 10},
    },
    "required": ["title", "summary", "items", "score"],
    "additionalProperties": False,
}


def reasoning_length(effort: str, medium: int, rng: random.Random) -> int:
    base = EFFORT_SCALE.get(effort, 1.0) * medium
    if base <= 0:
        return 0
    return max(1, int(base * (0.7 + 0.6 * rng.random())))


def _cut(ids: list[int], budget: int) -> tuple[list[int], bool]:
    return (ids, False) if len(ids) <= budget else (ids[:budget], True)


def tool_call_choice(gen: TextGenerator, fns: list[tools.Function], rng: random.Random,
                     hints: dict[str, str], offset: int, budget: int, legacy: bool) -> Choice:
    calls = [(fn.name, orjson.dumps(tools.arguments(fn, rng, hints)).decode()) for fn in fns]
    return calls_choice(gen.tok, calls, offset, budget, legacy)


def calls_choice(tok, named: list[tuple[str, str]], offset: int, budget: int, legacy: bool) -> Choice:
    """Tool calls ``(name, arguments)`` laid out as tokens from step ``offset``, cut at ``budget``."""
    ids: list[int] = []
    calls: list[ToolCall] = []
    for name, args in named:
        name_ids, arg_ids = tok.encode(name), tok.encode(args)
        start = len(ids) + len(name_ids)
        ids += name_ids + arg_ids
        calls.append(ToolCall("call_" + os.urandom(12).hex(), name, args,
                              offset + start - 1, offset + start, offset + len(ids)))
    ids, cut = _cut(ids, budget)
    texts = exact_texts(tok, ids)
    if cut:  # the budget ran out inside the calls: keep what was generated
        end = offset + budget
        if calls[0].header_step >= end:  # inside the first name: the header is all there is
            calls[0].header_step = end - 1
            calls[0].args_start = calls[0].args_end = end  # no argument token was generated
        calls = [c for c in calls if c.header_step < end]
        last = calls[-1]
        last.arguments = "".join(texts[last.args_start - offset:budget])
        last.args_end = min(last.args_end, offset + budget)
    finish = "length" if cut else ("function_call" if legacy else "tool_calls")
    return Choice(ids, texts, finish, tool_calls=calls, legacy_function=legacy)


def exact_texts(tok, ids: list[int]) -> list[str]:
    """Each token's text such that they join to exactly the decoded text: a token that ends
    inside a UTF-8 character carries none of it, the next one the whole character."""
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    return [dec.decode(tok.token_bytes(t)) for t in ids]


def scripted(tok, script: Script, budget: int, legacy: bool) -> Choice:
    """The choice a script dictates: its reasoning, then its tool calls, refusal or content,
    tokenized by the model's tokenizer and cut at ``budget`` like generated text."""
    r_ids = tok.encode(script.reasoning)[:budget] if script.reasoning else []
    remaining = budget - len(r_ids)
    if script.tool_calls and remaining > 0:
        choice = calls_choice(tok, list(script.tool_calls), len(r_ids), remaining, legacy)
        choice.ids[:0] = r_ids
        choice.texts[:0] = exact_texts(tok, r_ids)
        choice.reasoning = len(r_ids)
        return choice
    refusal = script.refusal is not None
    text = script.refusal if refusal else script.content or ""
    body, cut = _cut(tok.encode(text), max(remaining, 0))
    cut = cut or (script.reasoning is not None and len(r_ids) < tok.count(script.reasoning))
    cut = cut or (bool(script.tool_calls) and remaining <= 0)
    ids = r_ids + body
    return Choice(ids, exact_texts(tok, r_ids) + exact_texts(tok, body), "length" if cut else "stop",
                  reasoning=len(r_ids), refusal=refusal)


def truncate_arguments(tok, choice: Choice) -> None:
    """Cut the last tool call's arguments to their first half (so they are not valid JSON);
    the finish reason stays: the broken call a client must survive."""
    if not choice.tool_calls:
        return
    call = choice.tool_calls[-1]
    n = call.args_end - call.args_start
    keep = n // 2 if n > 1 else 0
    end = call.args_start + keep
    del choice.ids[end:], choice.texts[end:]
    call.args_end = end
    call.arguments = "".join(choice.texts[call.args_start:end])


def json_body(gen: TextGenerator, schema: dict, rng: random.Random, hints: dict[str, str],
              budget: int) -> tuple[list[int], bool]:
    text = orjson.dumps(jsonschema_gen.generate(schema, rng, hints)).decode()
    return _cut(gen.tok.encode(text), budget)


def predicted_body(gen: TextGenerator, prediction: str, rng: random.Random,
                   budget: int) -> tuple[list[int], int, int, bool]:
    """An edit of the prediction: most sentences kept, some rewritten. Returns
    (ids, accepted, rejected, cut), accepted/rejected by real token overlap."""
    tok = gen.tok
    parts = [p for p in prediction.replace("\n", " \n").split(". ") if p]
    out = []
    for p in parts:
        if rng.random() < 0.85:
            out.append(p)
        else:
            ids, _ = gen.generate(rng, 24, 12)
            out.append(gen.text(ids).rstrip("."))
    text = ". ".join(out)
    ids, cut = _cut(tok.encode(text), budget)
    pred_ids = tok.encode(prediction)
    matcher = difflib.SequenceMatcher(None, pred_ids, ids, autojunk=False)
    accepted = sum(b.size for b in matcher.get_matching_blocks())
    return ids, accepted, len(pred_ids) - accepted, cut


def compose(gen: TextGenerator, spec: OutputSpec, rng: random.Random, budget: int, target: int,
            words: tuple[str, ...], user_text: str, reasoning: int) -> Choice:
    """One choice within ``budget`` tokens; ``target`` is the natural text length."""
    tok = gen.tok
    r_ids: list[int] = []
    if reasoning:
        n = min(reasoning, budget)
        r_ids, _ = gen.generate(rng, n, n, words)  # exactly the drawn reasoning length
    remaining = budget - len(r_ids)
    hints = tools.hints_from(user_text) if (spec.tools or spec.json_schema or spec.json_object) else {}
    fns = tools.choose(spec.tools, user_text) if spec.tools and remaining > 0 else []
    if fns:
        choice = tool_call_choice(gen, fns, rng, hints, len(r_ids), remaining, spec.tools.legacy)
        choice.ids[:0] = r_ids
        choice.texts[:0] = [tok.token_text(t) for t in r_ids]
        choice.reasoning = len(r_ids)
        return choice
    accepted = rejected = 0
    if remaining <= 0:
        body, natural = [], False
    elif spec.json_schema is not None or spec.json_object:
        body, cut = json_body(gen, spec.json_schema or _ANY_OBJECT, rng, hints, remaining)
        natural = not cut
    elif spec.prediction:
        body, accepted, rejected, cut = predicted_body(gen, spec.prediction, rng, remaining)
        natural = not cut
    else:
        body, natural = gen.generate(rng, remaining, max(1, target - len(r_ids)), words)
    ids = r_ids + body
    choice = Choice(ids, [tok.token_text(t) for t in ids], "stop" if natural else "length",
                    reasoning=len(r_ids), accepted_prediction=accepted, rejected_prediction=rejected)
    return choice


def apply_stop(choice: Choice, stops: tuple[str, ...]) -> None:
    """Cut the content at the earliest stop sequence (reasoning and tool calls are not cut)."""
    if not stops or choice.tool_calls:
        return
    r = choice.reasoning
    body = choice.texts[r:]
    full = "".join(body)
    pos = min((p for p in (full.find(s) for s in stops if s) if p >= 0), default=-1)
    if pos < 0:
        return
    kept, acc = [], 0
    for t in body:
        if acc >= pos:
            break
        kept.append(t if acc + len(t) <= pos else t[: pos - acc])
        acc += len(t)
    choice.ids = choice.ids[: r + len(kept)]
    choice.texts = choice.texts[:r] + kept
    choice.finish_reason = "stop"


def add_logprobs(choice: Choice, gen: TextGenerator, rng: random.Random, top_n: int) -> None:
    if choice.tool_calls:
        return  # logprobs cover content; a tool call has none
    r = choice.reasoning
    choice.logprobs = chat_logprobs(gen.tok, choice.ids[r:], choice.texts[r:], rng, top_n)
