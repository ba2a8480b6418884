"""Deciding whether and which functions to call, and with what arguments.

The rules, in order:

* ``tool_choice: "none"`` never calls; a named function is always called;
  ``"required"`` always calls (the most relevant tool, or the first).
* ``"auto"`` (the default with tools): right after a ``tool`` (or ``function``)
  result the model answers in text, so a standard agent loop ends. Otherwise
  it calls the tools whose name or description shares words with the last
  user message (all of them with ``parallel_tool_calls``, else the best one);
  with no overlap it answers in text.

Arguments are instances of each function's parameter schema from the one
JSON-schema generator, seeded per request, with values drawn from the
conversation where a property's name fits (a city or place the user named, an
email address, a number, the user's words as a query).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from . import jsonschema_gen

_WORD = re.compile(r"[a-z0-9]+")
_SPLIT = re.compile(r"[_\-\s./]+|(?<=[a-z])(?=[A-Z])")
_COMMON = frozenset(
    "a an the of to in on for and or is are be get set with by from at as it this that what "
    "which how can you me my please tell give current use using".split()
)
_PROPER = re.compile(r"\b([A-Z][a-z]{2,}(?:\s[A-Z][a-z]{2,})?)\b")
_NOT_NAMES = frozenset(
    "what how where when why who which whose is are can could would will should please tell give "
    "show find get the this that there my our your his her its hello thanks thank hi hey yes no "
    "and but also then today tomorrow monday tuesday wednesday thursday friday saturday sunday "
    "check make book find search look weather send create write plan schedule remind call".split()
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,6}(?:\.\d+)?)(?![\w.])")


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ToolPlan:
    functions: tuple[Function, ...]
    choice: str = "auto"  # "auto" | "none" | "required" | a function name
    parallel: bool = True
    after_result: bool = False  # the last message is a tool/function result
    legacy: bool = False  # `functions` / `function_call`: one call, reported as function_call


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON and len(w) > 2}


def _tool_words(fn: Function) -> set[str]:
    parts = _SPLIT.split(fn.name)
    return _words(" ".join(parts) + " " + fn.description)


def choose(plan: ToolPlan, user_text: str) -> list[Function]:
    """The functions to call, in order (empty: answer in text)."""
    fns = plan.functions
    if not fns or plan.choice == "none":
        return []
    if plan.choice not in ("auto", "required"):
        return [f for f in fns if f.name == plan.choice][:1]
    if plan.choice == "auto" and plan.after_result:
        return []
    said = _words(user_text)
    scored = sorted(((len(said & _tool_words(f)), i, f) for i, f in enumerate(fns)), key=lambda x: (-x[0], x[1]))
    relevant = [f for score, _, f in scored if score > 0]
    if not relevant:
        return [scored[0][2]] if plan.choice == "required" else []
    if plan.legacy or not plan.parallel:
        return relevant[:1]
    return relevant[:3]


def _english() -> frozenset[str]:
    from . import wordbank

    words = set()
    for name in dir(wordbank):
        value = getattr(wordbank, name)
        if isinstance(value, tuple):
            words.update(w.lower() for w in value if isinstance(w, str) and w.isalpha())
    return frozenset(words)


_ENGLISH = _english()


def proper_nouns(text: str) -> list[str]:
    """Capitalised names, most likely first: mid-sentence ones, then a sentence's first
    word only when it is not an ordinary English word ("Check", "Weather")."""
    inner, initial = [], []
    for m in _PROPER.finditer(text):
        name = m.group(1)
        first = name.split()[0].lower()
        if not name.isascii() or first in _NOT_NAMES:
            continue
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".!?:":
            if first not in _ENGLISH:
                initial.append(name)
        else:
            inner.append(name)
    return inner + initial


def hints_from(text: str) -> dict[str, str]:
    """Values the user gave, keyed by the property names they plausibly fill."""
    hints: dict[str, str] = {}
    proper = proper_nouns(text)
    if proper:
        for key in ("city", "location", "place", "destination", "country", "name"):
            hints[key] = proper[0]
    email = _EMAIL.search(text)
    if email and email.group(0).isascii():
        hints["email"] = email.group(0)
    q = " ".join(text.split()[:12])
    if q and q.isascii():
        hints["query"] = q
        hints["search"] = q
    return hints


def arguments(fn: Function, rng: random.Random, hints: dict[str, str]) -> dict[str, Any]:
    """An argument object valid against ``fn.parameters``."""
    schema = fn.parameters or {"type": "object", "properties": {}}
    value = jsonschema_gen.generate(schema, rng, hints)
    return value if isinstance(value, dict) else {}
