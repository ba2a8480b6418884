"""The fault grammar, shared by the ``X-FakeAI-Fault`` header, the ``fault_*`` settings,
scenario outputs and the admin API (docs/faults-and-scenarios.md).

A spec is one or more items, separated by ``,`` or ``;``::

    spec  := item (("," | ";") item)*
    item  := "429" | "500" | "502" | "503" | "504"            an error answer
           | "529" | "overloaded"                           overload (529 on /v1/messages, else 503)
           | "401" | "invalid-api-key"                      401 invalid_api_key
           | "context-length"                               400 context_length_exceeded
           | "timeout" ["=" DUR]                            hold the request DUR (30s), then drop it
           | "retry-after=" DUR                             retry-after of an error (429: 1s)
           | "cut-after=" N                                 stream: drop the connection after N events
           | "error-after=" N                               stream: an SSE error event after N events
           | "malformed-after=" N                           stream: event N+1 arrives as broken JSON
           | "stall=" DUR | "stall-after=" N ":" DUR       stream: pause DUR after N events (0)
           | "drip=" DUR                                    stream: extra DUR before every event
           | "truncate-tools"                               tool-call arguments cut to broken JSON
    DUR   := NUMBER ("ms" | "s" | "m" | "h")             (at most 1 h)

Names are case-insensitive and ``_`` may stand for ``-``. An error or timeout never
streams, so it combines only with ``retry-after``; stream items combine freely, except
that one stream ends only once (one of ``cut-after`` / ``error-after``).

Rules of the ``fault_rates`` setting are ``RATE SPEC [ENDPOINT]`` (``0.05 503``,
``20% cut-after=3 /v1/chat/completions``); ``fault_schedule`` rules put a window
first: ``START-END RATE SPEC [ENDPOINT]`` (``30s-90s 20% 503``; an open end runs on).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

ERRORS = {"429": "429", "500": "500", "502": "502", "503": "503", "504": "504", "529": "overloaded",
          "overloaded": "overloaded", "401": "invalid_api_key", "invalid-api-key": "invalid_api_key",
          "context-length": "context_length_exceeded", "context-length-exceeded": "context_length_exceeded"}
DEFAULT_TIMEOUT = 30.0
MAX_DURATION = 3600.0
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_WINDOW = re.compile(r"^([^-\s]+)-([^-\s]*)$")


@dataclass(frozen=True, slots=True)
class Fault:
    """One request's faults: an error or a timeout instead of the answer, or changes to its stream."""

    error: str | None = None  # a key of ERRORS' values: "429", ..., "overloaded", "invalid_api_key", ...
    timeout: float | None = None  # seconds to hold before dropping the connection
    retry_after: float | None = None
    cut_after: int | None = None
    error_after: int | None = None
    malformed_after: int | None = None
    stall_after: int | None = None
    stall: float = 0.0
    drip: float = 0.0
    truncate_tools: bool = False
    spec: str = field(default="", compare=False)  # the text it was parsed from

    @property
    def pre_response(self) -> bool:
        """Answered instead of the request (an error or a timeout)."""
        return self.error is not None or self.timeout is not None

    @property
    def streams(self) -> bool:
        """Changes a streamed answer."""
        return (self.cut_after is not None or self.error_after is not None or self.malformed_after is not None
                or self.stall_after is not None or self.drip > 0)

    def kinds(self) -> list[str]:
        """Its counter labels (``type`` of ``fakeai_injected_faults_total``)."""
        if self.error is not None:
            return [self.error]
        if self.timeout is not None:
            return ["timeout"]
        out = []
        for name, on in (("cut", self.cut_after is not None), ("error_event", self.error_after is not None),
                         ("malformed", self.malformed_after is not None), ("stall", self.stall_after is not None),
                         ("drip", self.drip > 0), ("truncate_tools", self.truncate_tools)):
            if on:
                out.append(name)
        return out


def parse_duration(text: str, limit: float = MAX_DURATION) -> float:
    """``250ms``, ``1.5s``, ``2m`` or ``1h`` in seconds (at most ``limit``)."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ValueError(f"invalid duration {text!r}: expected a number with ms, s, m or h, e.g. 250ms or 2s")
    value = float(m.group(1)) * _UNIT[m.group(2)]
    if value > limit:
        raise ValueError(f"invalid duration {text!r}: at most 1 hour")
    return value


def _count(name: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid {name} value {text!r}: expected a whole number of events")
    return int(text)


def parse_fault(text: str) -> Fault:
    """A spec (see the module doc) as a ``Fault``; ValueError naming what is wrong."""
    items = [p.strip() for p in re.split(r"[,;]", text) if p.strip()]
    if not items:
        raise ValueError("empty fault spec")
    kw: dict = {}

    def put(key: str, value, name: str) -> None:
        if key in kw:
            raise ValueError(f"fault {name!r} given twice")
        kw[key] = value

    for item in items:
        name, _, value = item.partition("=")
        name = name.strip().lower().replace("_", "-")
        value = value.strip()
        if name in ERRORS and not value:
            put("error", ERRORS[name], name)
        elif name == "timeout":
            put("timeout", parse_duration(value) if value else DEFAULT_TIMEOUT, name)
        elif name == "retry-after":
            put("retry_after", parse_duration(value), name)
        elif name in ("cut-after", "error-after", "malformed-after"):
            put(name.replace("-", "_"), _count(name, value), name)
        elif name == "stall":
            put("stall_after", 0, name)
            kw["stall"] = parse_duration(value)
        elif name == "stall-after":
            n, sep, dur = value.partition(":")
            if not sep:
                raise ValueError(f"invalid stall-after value {value!r}: expected N:DURATION, e.g. 3:2s")
            put("stall_after", _count(name, n), name)
            kw["stall"] = parse_duration(dur)
        elif name == "drip":
            put("drip", parse_duration(value), name)
        elif name == "truncate-tools" and not value:
            put("truncate_tools", True, name)
        else:
            raise ValueError(f"unknown fault {item!r}")
    fault = Fault(**kw, spec=",".join(items))
    if "error" in kw and "timeout" in kw:
        raise ValueError("a fault is either an error or a timeout, not both")
    if fault.pre_response and (fault.streams or fault.truncate_tools):
        raise ValueError("an error or timeout never streams: it cannot combine with stream faults")
    if fault.retry_after is not None and fault.error is None:
        raise ValueError("retry-after goes with an error (429, 5xx, overloaded)")
    if fault.cut_after is not None and fault.error_after is not None:
        raise ValueError("a stream ends once: give cut-after or error-after, not both")
    return fault


def parse_rate(text: str) -> float:
    """``0.2`` or ``20%`` as a probability in [0, 1]."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"invalid rate {text!r}: expected a probability (0.2) or a percentage (20%)") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"invalid rate {text!r}: must be between 0 and 1 (0% and 100%)")
    return value


@dataclass(frozen=True, slots=True)
class Rule:
    """Inject ``fault`` into a share ``rate`` of the requests to ``endpoint`` (None: every
    endpoint) while the server's age in seconds is within [start, end)."""

    rate: float
    fault: Fault
    endpoint: str | None = None
    start: float = 0.0
    end: float = math.inf
    text: str = field(default="", compare=False)

    def live(self, age: float) -> bool:
        return self.start <= age < self.end


def _rule(tokens: list[str], text: str, start: float = 0.0, end: float = math.inf) -> Rule:
    if len(tokens) not in (2, 3):
        raise ValueError(f"invalid fault rule {text!r}: expected RATE SPEC [ENDPOINT], e.g. '20% 503'")
    endpoint = tokens[2] if len(tokens) == 3 else None
    if endpoint is not None and not endpoint.startswith("/"):
        raise ValueError(f"invalid fault rule {text!r}: the endpoint is a path, e.g. /v1/chat/completions")
    return Rule(parse_rate(tokens[0]), parse_fault(tokens[1]), endpoint, start, end, text)


def parse_rule(text: str) -> Rule:
    """A ``fault_rates`` entry: ``RATE SPEC [ENDPOINT]``."""
    return _rule(text.split(), text)


def parse_window_rule(text: str) -> Rule:
    """A ``fault_schedule`` entry: ``START-END RATE SPEC [ENDPOINT]`` (seconds since start)."""
    tokens = text.split()
    m = _WINDOW.match(tokens[0]) if tokens else None
    if not m:
        raise ValueError(f"invalid fault schedule {text!r}: expected START-END RATE SPEC [ENDPOINT], "
                         "e.g. '30s-90s 20% 503'")
    start = 0.0 if m.group(1) == "0" else parse_duration(m.group(1), math.inf)
    end = parse_duration(m.group(2), math.inf) if m.group(2) else math.inf
    if end <= start:
        raise ValueError(f"invalid fault schedule {text!r}: the window ends before it starts")
    return _rule(tokens[1:], text, start, end)
