"""Scenario matchers: does a request (its endpoint, body and headers) fit a scenario?

Every condition a matcher gives must hold (an empty matcher matches everything):

* ``endpoint``: the request path (or a list of paths);
* ``model``: the body's model, exactly or as a glob (``gpt-4o*``), or a list of either;
* ``user`` / ``user_regex``: a substring of / a regex searched in the last user message;
* ``system`` / ``system_regex``: the same on the system prompt;
* ``jmespath``: an expression over the JSON body whose result is truthy;
* ``headers``: header values, exactly (names are case-insensitive).

The last user message and the system prompt are read the same way on every API:
chat and Anthropic ``messages`` (text parts joined), Anthropic ``system``, Responses
``input`` and ``instructions``, a completions ``prompt``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

_SYSTEM_ROLES = ("system", "developer")


def _text(content: Any) -> str:
    """A message's text: a string, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _messages(body: dict) -> list:
    for key in ("messages", "input"):
        value = body.get(key)
        if isinstance(value, list):
            return value
    return []


def last_user(body: dict) -> str:
    """The last user message of a chat, Anthropic, Responses or completions body."""
    for msg in reversed(_messages(body)):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _text(msg.get("content"))
    for key in ("input", "prompt"):
        value = body.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value[-1]
    return ""


def first_user(body: dict) -> str:
    """The first user message (what names a conversation when no session header does)."""
    for msg in _messages(body):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _text(msg.get("content"))
    return last_user(body)


def system_prompt(body: dict) -> str:
    """The system prompt: chat system/developer messages, Anthropic ``system``, Responses ``instructions``."""
    parts = [_text(body[k]) for k in ("system", "instructions") if k in body] if (
        "system" in body or "instructions" in body) else []
    for m in _messages(body):
        if isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES:
            parts.append(_text(m.get("content")))
    if not parts:
        return ""
    return "\n".join(p for p in parts if p)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{what} must be a string or a list of strings")


def _regex(pattern: Any, what: str) -> re.Pattern:
    if not isinstance(pattern, str):
        raise ValueError(f"{what} must be a string")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{what} is not a valid regular expression: {e}") from None


class Request:
    """One request as the matchers see it; the texts are read once, on first use."""

    __slots__ = ("_system", "_user", "body", "endpoint", "headers")

    def __init__(self, endpoint: str, body: dict, headers: list[tuple[bytes, bytes]]) -> None:
        self.endpoint, self.body, self.headers = endpoint, body, headers  # ASGI's: lower-case names
        self._user: str | None = None
        self._system: str | None = None

    def header(self, name: bytes) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("latin-1")
        return None

    @property
    def user(self) -> str:
        if self._user is None:
            self._user = last_user(self.body)
        return self._user

    @property
    def system(self) -> str:
        if self._system is None:
            self._system = system_prompt(self.body)
        return self._system


_KEYS = ("endpoint", "model", "user", "user_regex", "system", "system_regex", "jmespath", "headers")


@dataclass(frozen=True, slots=True)
class Matcher:
    endpoints: tuple[str, ...] | None = None
    models: re.Pattern | None = None  # the model names and globs, as one pattern
    user: str | None = None
    user_regex: re.Pattern | None = None
    system: str | None = None
    system_regex: re.Pattern | None = None
    jmespath: Any = None  # a compiled JMESPath expression: body -> is its value true
    headers: tuple[tuple[bytes, str], ...] = ()

    @classmethod
    def build(cls, spec: dict | None) -> "Matcher":
        """A matcher from its file form; ValueError naming a bad condition."""
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ValueError("match must be a mapping of conditions")
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValueError(f"unknown match condition(s) {', '.join(unknown)} (known: {', '.join(_KEYS)})")
        kw: dict[str, Any] = {}
        if "endpoint" in spec:
            kw["endpoints"] = _strings(spec["endpoint"], "match.endpoint")
        if "model" in spec:
            globs = _strings(spec["model"], "match.model")
            kw["models"] = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))
        for key in ("user", "system"):
            if key in spec:
                if not isinstance(spec[key], str):
                    raise ValueError(f"match.{key} must be a string")
                kw[key] = spec[key]
            if f"{key}_regex" in spec:
                kw[f"{key}_regex"] = _regex(spec[f"{key}_regex"], f"match.{key}_regex")
        if "jmespath" in spec:
            from jmespath.exceptions import JMESPathError  # only when some scenario uses it

            from .jmespath_compile import predicate

            if not isinstance(spec["jmespath"], str):
                raise ValueError("match.jmespath must be a string")
            try:
                kw["jmespath"] = predicate(spec["jmespath"])
            except JMESPathError as e:
                raise ValueError(f"match.jmespath is not a valid JMESPath expression: {e}") from None
        if "headers" in spec:
            h = spec["headers"]
            if not isinstance(h, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in h.items()):
                raise ValueError("match.headers must map header names to string values")
            kw["headers"] = tuple((k.lower().encode("latin-1"), v) for k, v in h.items())
        return cls(**kw)

    def matches(self, req: Request) -> bool:
        if self.endpoints is not None and req.endpoint not in self.endpoints:
            return False
        if self.models is not None:
            model = req.body.get("model")
            if not isinstance(model, str) or self.models.match(model) is None:
                return False
        for name, value in self.headers:
            if req.header(name) != value:
                return False
        if self.user is not None and self.user not in req.user:
            return False
        if self.user_regex is not None and self.user_regex.search(req.user) is None:
            return False
        if self.system is not None and self.system not in req.system:
            return False
        if self.system_regex is not None and self.system_regex.search(req.system) is None:
            return False
        if self.jmespath is not None and not self.jmespath(req.body):  # (never raises)
            return False
        return True
