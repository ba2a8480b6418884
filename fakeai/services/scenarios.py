"""Scripted scenarios: a YAML file mapping request matchers to scripted outputs.

    scenarios:
      - name: weather loop                       # optional, for logs and the admin API
        match: {model: "gpt-4o*", user_regex: "(?i)weather"}
        sequence:                                # or `output:` for a single answer
          - tool_calls: [{name: get_weather, arguments: {city: Paris}}]
          - content: "It is 18 °C and sunny in Paris."
        then: last                               # after the sequence: last | cycle | generate

An output is any of ``content``, ``reasoning``, ``refusal``, ``tool_calls``
(``name`` + ``arguments``, an object or a raw string), ``usage`` (reported
``prompt_tokens``, ``completion_tokens``, ``cached_tokens``, ``reasoning_tokens``),
``fault`` (the ``X-FakeAI-Fault`` grammar), ``ttft_ms`` and ``itl_ms``. Outputs
that write nothing leave the text to the engine.

The first scenario whose matcher fits wins (file order). A sequence advances
once per matching call of a *session*: the ``X-FakeAI-Session`` header, or else
the conversation (its system prompt and first user message), so each turn of
a tool loop gets the next step and a retried request the step after the one
that failed. The file is re-read when it changes (its mtime, polled at most
every half second on requests); a file that no longer parses keeps the old
scenarios and logs why.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from ..engine.output import Script
from ..security.fault_spec import Fault, parse_fault
from .scenario_match import Matcher, Request, first_user

log = logging.getLogger("fakeai")

POLL_S = 0.5
SESSION_HEADER = b"x-fakeai-session"
MAX_SESSIONS = 100_000
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
_OUTPUT_KEYS = ("content", "reasoning", "refusal", "tool_calls", "usage", "fault", "ttft_ms", "itl_ms")
_SCENARIO_KEYS = ("name", "match", "output", "sequence", "then")
_THEN = ("last", "cycle", "generate")


@dataclass(frozen=True, slots=True)
class Output:
    script: Script | None  # None: nothing to change in the generation
    fault: Fault | None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    matcher: Matcher
    steps: tuple[Output, ...]
    then: str = "last"


def _opt_str(d: dict, key: str, where: str) -> str | None:
    v = d.get(key)
    if v is not None and not isinstance(v, str):
        raise ValueError(f"{where}.{key} must be a string")
    return v


def _ms(d: dict, key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ValueError(f"{where}.{key} must be a number of milliseconds >= 0")
    return v / 1000.0


def _tool_calls(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}.tool_calls must be a non-empty list of {{name, arguments}}")
    out = []
    for k, call in enumerate(value):
        w = f"{where}.tool_calls[{k}]"
        if not isinstance(call, dict) or set(call) - {"name", "arguments"} or not isinstance(call.get("name"), str):
            raise ValueError(f"{w} must be {{name: string, arguments: object or string}}")
        args = call.get("arguments", {})
        if isinstance(args, dict):
            args = orjson.dumps(args).decode()
        elif not isinstance(args, str):  # a string is sent as is, even broken JSON
            raise ValueError(f"{w}.arguments must be an object or a string")
        out.append((call["name"], args))
    return tuple(out)


def parse_output(d: Any, where: str) -> Output:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a mapping")
    unknown = sorted(set(d) - set(_OUTPUT_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown output field(s) {', '.join(unknown)} (known: {', '.join(_OUTPUT_KEYS)})")
    usage = d.get("usage") or {}
    if not isinstance(usage, dict) or set(usage) - set(USAGE_KEYS) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in usage.values()):
        raise ValueError(f"{where}.usage maps {', '.join(USAGE_KEYS)} to whole numbers >= 0")
    fault = None
    if d.get("fault") is not None:
        try:
            fault = parse_fault(str(d["fault"]))
        except ValueError as e:
            raise ValueError(f"{where}.fault: {e}") from None
    given = [k for k in ("content", "refusal", "tool_calls") if d.get(k) is not None]
    if len(given) > 1:
        raise ValueError(f"{where}: give one of content, refusal and tool_calls, not {' and '.join(given)}")
    script = Script(
        content=_opt_str(d, "content", where),
        reasoning=_opt_str(d, "reasoning", where),
        refusal=_opt_str(d, "refusal", where),
        tool_calls=_tool_calls(d["tool_calls"], where) if d.get("tool_calls") is not None else (),
        ttft=_ms(d, "ttft_ms", where),
        itl=_ms(d, "itl_ms", where),
        usage=tuple(usage.items()),
    )
    return Output(None if script == Script() else script, fault)


def parse_scenarios(doc: Any, source: str = "scenarios") -> list[Scenario]:
    """Scenarios from the file's document (``{scenarios: [...]}`` or the bare list);
    ValueError naming the scenario and field that is wrong."""
    items = doc.get("scenarios") if isinstance(doc, dict) and set(doc) <= {"scenarios"} else doc
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a list of scenarios under 'scenarios'")
    out = []
    for i, s in enumerate(items):
        where = f"{source}: scenarios[{i}]"
        if not isinstance(s, dict):
            raise ValueError(f"{where} must be a mapping")
        unknown = sorted(set(s) - set(_SCENARIO_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(_SCENARIO_KEYS)})")
        if ("output" in s) == ("sequence" in s):
            raise ValueError(f"{where}: give either output or sequence")
        if "sequence" in s and (not isinstance(s["sequence"], list) or not s["sequence"]):
            raise ValueError(f"{where}.sequence must be a non-empty list of outputs")
        raw_steps = s["sequence"] if "sequence" in s else [s["output"]]
        then = s.get("then", "last")
        if then not in _THEN:
            raise ValueError(f"{where}.then must be one of {', '.join(_THEN)}")
        try:
            matcher = Matcher.build(s.get("match"))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        steps = tuple(parse_output(o, f"{where}.{'sequence' if 'sequence' in s else 'output'}"
                                      + (f"[{k}]" if "sequence" in s else "")) for k, o in enumerate(raw_steps))
        name = s.get("name")
        out.append(Scenario(str(name) if name is not None else f"#{i}", matcher, steps, then))
    return out


def read_file(path: str) -> list[Scenario]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise ValueError(f"cannot read scenarios file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"scenarios file {path} is not valid YAML: {e}") from None
    return parse_scenarios(doc, path)


def _signature(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Scenarios:
    """The loaded scenarios, their sessions' positions, and the file they came from."""

    def __init__(self, settings, clock=time.monotonic) -> None:
        self._clock = clock
        self.path: str | None = None
        self.scenarios: list[Scenario] = []
        self._sessions: dict[tuple[int, bytes], int] = {}
        if settings.scenarios_file:
            self._load_file(settings.scenarios_file)

    @property
    def active(self) -> bool:
        return self.path is not None or bool(self.scenarios)

    @property
    def scenarios(self) -> list[Scenario]:
        return self._scenarios

    @scenarios.setter
    def scenarios(self, value: list[Scenario]) -> None:
        self._scenarios = value
        self._may_stream_fault = any(step.fault is not None and step.fault.streams
                                     for sc in value for step in sc.steps)

    def may_stream_fault(self) -> bool:
        """Could a scenario answer with a stream fault (after re-reading a changed file)? If
        not, no response needs watching for one."""
        if self.path is not None:
            self._poll()
        return self._may_stream_fault

    def _load_file(self, path: str) -> None:
        sig = _signature(path)
        scenarios = read_file(path)
        self.path, self.scenarios, self._sig = path, scenarios, sig
        self._next_check = self._clock() + POLL_S
        self._sessions.clear()

    def _poll(self) -> None:
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + POLL_S
        sig = _signature(self.path)
        if sig is None or sig == self._sig:
            return
        self._sig = sig
        try:
            self.scenarios = read_file(self.path)
        except ValueError as e:
            log.error("scenarios not reloaded, keeping the previous ones: %s", e)
            return
        self._sessions.clear()
        log.info("scenarios reloaded from %s (%d)", self.path, len(self.scenarios))

    # -- admin ----------------------------------------------------------------------
    def configure(self, patch: dict) -> None:
        """``{"file": PATH}`` loads (and watches) a file, ``{"scenarios": [...]}`` sets them
        inline (and stops watching); ``{"file": null}`` clears. ValueError on anything invalid."""
        unknown = sorted(set(patch) - {"file", "scenarios"})
        if unknown:
            raise ValueError(f"unknown scenarios option(s): {', '.join(unknown)} (known: file, scenarios)")
        if "file" in patch and "scenarios" in patch and patch["file"] is not None:
            raise ValueError("give scenarios.file or scenarios.scenarios, not both")
        if patch.get("file") is not None:
            if not isinstance(patch["file"], str):
                raise ValueError("scenarios.file must be a path")
            self._load_file(patch["file"])
            return
        scenarios = parse_scenarios(patch.get("scenarios") or [], "scenarios.scenarios")
        self.path, self.scenarios = None, scenarios
        self._sessions.clear()

    # -- matching -------------------------------------------------------------------
    def match(self, endpoint: str, body: dict, headers: list[tuple[bytes, bytes]]) -> tuple[Scenario, Output] | None:
        """The output the first fitting scenario gives this call (advancing its session), or None."""
        if self.path is not None:
            self._poll()
        if not self.scenarios:
            return None
        req = Request(endpoint, body, headers)
        for i, sc in enumerate(self.scenarios):
            if not sc.matcher.matches(req):
                continue
            steps = sc.steps
            if len(steps) == 1 and sc.then != "generate":
                return sc, steps[0]
            key = (i, self._session(req))
            n = self._sessions.get(key, 0)
            if n >= len(steps):
                if sc.then == "generate":
                    continue  # done: later scenarios or the engine answer
                step = steps[n % len(steps)] if sc.then == "cycle" else steps[-1]
            else:
                step = steps[n]
            self._advance(key, n + 1)
            return sc, step
        return None

    @staticmethod
    def _session(req: Request) -> bytes:
        explicit = req.header(SESSION_HEADER)
        if explicit is not None:
            return b"h:" + explicit.encode()
        h = hashlib.blake2b(digest_size=16)
        h.update(req.system.encode())
        h.update(b"\x00")
        h.update(first_user(req.body).encode())
        return h.digest()

    def _advance(self, key: tuple[int, bytes], n: int) -> None:
        sessions = self._sessions
        if key not in sessions and len(sessions) >= MAX_SESSIONS:
            del sessions[next(iter(sessions))]  # the oldest conversation
        sessions[key] = n
