"""``Faults``: which requests get an injected fault, and how many each kind has had.

Built from the settings (``fault_rate`` + ``fault_types``, ``fault_rates``,
``fault_schedule``, ``fault_seed``, ``fault_header``) and changed at runtime by
``configure`` (the admin API). A request draws once from the seeded RNG when a
rule covers its endpoint at that moment, so a run of sequential requests is
reproducible; the rules' rates add up (the first rule the draw falls in wins).
Rendering and running a fault is the API layer's business (``fakeai.api.chaos``).
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter

from .fault_spec import Fault, Rule, parse_fault, parse_rule, parse_window_rule

_ID_SEGMENT = re.compile(r"\d")

# admin/config keys -> settings fields
FIELDS = {"rate": "fault_rate", "types": "fault_types", "rates": "fault_rates",
          "schedule": "fault_schedule", "seed": "fault_seed", "header": "fault_header"}


def endpoint_of(path: str) -> str:
    """The endpoint label of a path: segments holding an id (any digit) become ``{id}``,
    so ``/v1/files/file-abc123`` counts under ``/v1/files/{id}``."""
    if not _ID_SEGMENT.search(path[4:]):  # fast path: /v1/chat/completions and friends
        return path
    return "/".join("{id}" if i > 1 and _ID_SEGMENT.search(p) else p for i, p in enumerate(path.split("/")))


class Faults:
    def __init__(self, settings, clock=time.monotonic) -> None:
        self._clock = clock
        self._counts: Counter[tuple[str, str]] = Counter()
        self._config: dict = {}
        self.configure({k: getattr(settings, f) for k, f in FIELDS.items()})

    # -- configuration -----------------------------------------------------------
    def configure(self, patch: dict) -> None:
        """Change some of ``rate, types, rates, schedule, seed, header`` (as the settings
        ``fault_*`` of the same names); all or nothing. ValueError on an unknown key or a bad
        value. A new schedule's windows count from now; a given seed restarts the RNG."""
        unknown = sorted(set(patch) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown fault option(s): {', '.join(unknown)} (known: {', '.join(FIELDS)})")
        cfg = {**self._config, **patch}
        rate, types = cfg.get("rate", 0.0), cfg.get("types", [])
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError("faults.rate must be a number between 0 and 1")
        for key in ("types", "rates", "schedule"):
            if not isinstance(cfg.get(key, []), list) or not all(isinstance(x, str) for x in cfg.get(key, [])):
                raise ValueError(f"faults.{key} must be a list of strings")
        seed = cfg.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("faults.seed must be an integer or null")
        if not isinstance(cfg.get("header", True), bool):
            raise ValueError("faults.header must be true or false")
        typed = [parse_fault(t) for t in types]
        if rate and not typed:
            raise ValueError("faults.rate needs at least one fault type")
        rules = [Rule(rate / len(typed), f, text=f"{rate / len(typed):g} {f.spec}") for f in typed if rate]
        rules += [parse_rule(t) for t in cfg.get("rates", [])]
        rules += [parse_window_rule(t) for t in cfg.get("schedule", [])]
        # all valid: apply
        self._config = cfg
        self.header_allowed = cfg.get("header", True)
        if "seed" in patch:  # (the first call, from __init__, gives every key)
            self._rng = random.Random(seed)
        if "schedule" in patch:
            self._started = self._clock()
        self._everywhere = [r for r in rules if r.endpoint is None]
        self._by_endpoint = {r.endpoint: [x for x in rules if x.endpoint in (None, r.endpoint)]
                             for r in rules if r.endpoint is not None}
        self.active = bool(rules)

    # -- drawing ------------------------------------------------------------------
    def draw(self, endpoint: str) -> Fault | None:
        """The fault (if any) the rules give one request to ``endpoint`` now."""
        rules = self._by_endpoint.get(endpoint, self._everywhere)
        if not rules:
            return None
        age = self._clock() - self._started
        u = None
        acc = 0.0
        for r in rules:
            if r.start <= age < r.end:
                if u is None:
                    u = self._rng.random()
                acc += r.rate
                if u < acc:
                    return r.fault
        return None

    # -- counting -----------------------------------------------------------------
    def record(self, kinds: list[str], endpoint: str) -> None:
        for kind in kinds:
            self._counts[(kind, endpoint)] += 1

    def counts(self) -> dict[tuple[str, str], int]:
        """Injected faults so far, by (type, endpoint)."""
        return dict(self._counts)

    def collect(self):
        """``fakeai_injected_faults_total{type,endpoint}`` for the metrics registry."""
        from ..telemetry.families import counter  # prometheus_client: only when scraped

        yield counter("fakeai_injected_faults", "Faults injected into answers (fault injection), by type "
                      "and endpoint.", ["type", "endpoint"], sorted(self._counts.items()))
