"""Rate limits per key and per model: requests and tokens per minute and per day.

Each limit is a fixed window counted in a ``limits`` storage (in memory by default,
Redis when ``store = "redis"``, so replicas share one budget). A request adds 1 to its
request counters and its token estimate (prompt tokens + max_tokens x n) to its token
counters; a counter that goes over its limit is given back at once and the request is
refused with OpenAI's 429. After generation the token counters are corrected to the
real usage (``Reservation.settle``), as OpenAI reconciles.

Windows: a minute (or ``rate_limit_quantum_s`` seconds, OpenAI's "quantized" limits:
RPM x quantum / 60 per quantum) and a day, each starting at its first request. Every
counter update is one atomic increment (a Lua script on Redis), so N+1 concurrent
requests against a limit of N give exactly one 429.
"""

from __future__ import annotations

import math
import time
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import resources

TIERS = ("free", "tier-1", "tier-2", "tier-3", "tier-4", "tier-5")
DAY = 86400
_ORG = "org-fakeai"
_LEARN = "Visit https://platform.openai.com/account/rate-limits to learn more."


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None


@lru_cache(maxsize=1)
def tier_table() -> dict[str, tuple[tuple[str, Limits], ...]]:
    """tier -> ((model pattern, limits), ...) from ``data/tiers.toml``, in file order."""
    text = resources.files("fakeai.security").joinpath("data/tiers.toml").read_text(encoding="utf-8")
    return {tier: tuple((pattern, Limits(**row)) for pattern, row in rows.items())
            for tier, rows in tomllib.loads(text).items()}


@dataclass(frozen=True, slots=True)
class Policy:
    tier: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    tpd: int | None = None
    quantum_s: int | None = None

    @classmethod
    def from_values(cls, v) -> Policy:
        """From Settings (or anything with the ``rate_limit_*`` attributes)."""
        return cls(v.rate_limit_tier, v.rate_limit_rpm, v.rate_limit_tpm, v.rate_limit_rpd, v.rate_limit_tpd,
                   v.rate_limit_quantum_s)

    @property
    def enabled(self) -> bool:
        return any(x is not None for x in (self.tier, self.rpm, self.tpm, self.rpd, self.tpd))

    def limits(self, model_id: str) -> Limits:
        base = Limits()
        if self.tier is not None:
            base = next((lim for pattern, lim in tier_table()[self.tier] if fnmatchcase(model_id, pattern)), base)
        return Limits(self.rpm or base.rpm, self.tpm or base.tpm, self.rpd or base.rpd, self.tpd or base.tpd)


def duration(seconds: float) -> str:
    """A duration as OpenAI's headers write it (Go's format): ``6m0s``, ``1s``, ``8.64s``, ``20ms``."""
    return _duration_ms(math.ceil(seconds * 1000))


def _duration_ms(ms: int) -> str:
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return "%dms" % ms
    s, frac = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    sec = ("%d.%03d" % (s, frac)).rstrip("0") if frac else "%d" % s
    if h:
        return "%dh%dm%ss" % (h, m, sec)
    return "%dm%ss" % (m, sec) if m else sec + "s"


_DURATIONS: dict[int, bytes] = {}  # milliseconds -> the header value (requests of one ms share it)


def _duration_bytes(seconds: float) -> bytes:
    ms = math.ceil(seconds * 1000)
    out = _DURATIONS.get(ms)
    if out is None:
        if len(_DURATIONS) >= 16384:  # (~1.7 MB at most)
            _DURATIONS.clear()
        out = _DURATIONS[ms] = _duration_ms(ms).encode()
    return out


_NAMES = {kind: tuple(f"x-ratelimit-{w}-{kind}".encode() for w in ("limit", "remaining", "reset"))
          for kind in ("requests", "tokens")}


class _Spec:
    """One limit a (key, model) is counted against, with its header parts precomputed."""

    __slots__ = ("_limit_header", "_remaining", "_reset", "first", "key", "kind", "label", "limit", "tokens",
                 "window")

    def __init__(self, kind: str, label: str, limit: int, window: int, key: str, first: bool) -> None:
        self.kind, self.label, self.limit, self.window, self.key = kind, label, limit, window, key
        self.tokens = kind == "tokens"
        self.first = first  # the shortest window of its kind: the one the x-ratelimit headers show
        limit_h, self._remaining, self._reset = _NAMES[kind]
        self._limit_header = (limit_h, b"%d" % limit)

    def headers(self, used: int, reset_in: float) -> tuple[tuple[bytes, bytes], ...]:
        return (self._limit_header, (self._remaining, b"%d" % max(self.limit - used, 0)),
                (self._reset, _duration_bytes(reset_in)))


class _Done:
    """An awaitable that is already finished: what the hot-path calls return when the work
    was done at once (no coroutine is made)."""

    __slots__ = ()

    def __await__(self):
        return iter(())


DONE = _Done()


class RateLimited(Exception):
    """A request over a limit: OpenAI's message, its ``type`` and the seconds to wait (None:
    never, the request alone is larger than the limit)."""

    def __init__(self, message: str, kind: str, retry_after: float | None, headers: list) -> None:
        super().__init__(message)
        self.message, self.kind, self.retry_after, self.headers = message, kind, retry_after, headers


class Reservation:
    """What one admitted request took: its ``headers`` and the token counters to correct."""

    __slots__ = ("_storage", "_tokens", "estimate", "headers")

    def __init__(self, storage, tokens: list[tuple[_Spec, float]], estimate: int, headers: list) -> None:
        self._storage = storage
        self._tokens = tokens  # (spec, when its window ends) of the token counters
        self.estimate, self.headers = estimate, headers

    def settle(self, used_tokens: int):
        """Correct the token counters from the estimate to ``used_tokens`` (the real usage);
        await the result (done at once on a store with a plain increment)."""
        delta = used_tokens - self.estimate
        if not delta or not self._tokens:
            return DONE
        self.estimate = used_tokens
        hit = getattr(self._storage, "hit", None)
        if hit is None:
            return self._settle(delta)
        now = time.time()
        for spec, reset_at in self._tokens:
            if now < reset_at:  # the window it was counted in is still open
                hit(spec.key, spec.window, delta)
        return DONE

    async def _settle(self, delta: int) -> None:
        now = time.time()
        for spec, reset_at in self._tokens:
            if now < reset_at:
                await self._storage.incr(spec.key, spec.window, delta)


_CACHE_MAX = 65536


class Limiter:
    def __init__(self, policy: Policy, storage_factory) -> None:
        self.policy = policy
        self._factory = storage_factory
        self._storage = None
        self._specs: dict[tuple[str, str], tuple[_Spec, ...]] = {}
        self._resets: dict[str, float] = {}  # key -> when its current window ends
        self.configure(policy)

    def configure(self, policy: Policy) -> None:
        self.policy = policy
        self.enabled = policy.enabled
        self._specs.clear()
        if self.enabled and self._storage is None:  # now (importing limits), not on the first request
            self._storage = self._factory()

    @property
    def storage(self):
        if self._storage is None:
            self._storage = self._factory()
        return self._storage

    def specs(self, subject: str, model_id: str) -> tuple[_Spec, ...]:
        """The limits of (subject, model): requests then tokens, the shorter window first."""
        specs = self._specs.get((subject, model_id))
        if specs is not None:
            return specs
        lim, q = self.policy.limits(model_id), self.policy.quantum_s
        minute = q or 60
        per = f"per {q}s" if q else "per min"
        base = f"fakeai/{subject}/{model_id}/"
        out = []
        for kind, short, tag, per_minute, per_day in (("requests", "R", "rq", lim.rpm, lim.rpd),
                                                      ("tokens", "T", "tk", lim.tpm, lim.tpd)):
            if per_minute:
                out.append(_Spec(kind, f"{kind} {per} ({short}PM)", _scaled(per_minute, q), minute,
                                 f"{base}{tag}/{minute}", True))
            if per_day:
                out.append(_Spec(kind, f"{kind} per day ({short}PD)", per_day, DAY, f"{base}{tag}/{DAY}",
                                 not per_minute))
        if len(self._specs) >= _CACHE_MAX:
            self._specs.clear()
        specs = self._specs[(subject, model_id)] = tuple(out)
        return specs

    async def _reset_at(self, spec: _Spec, opened: bool, now: float) -> float:
        """When ``spec``'s window ends: known without asking the store when this increment
        opened it or the process has asked before (once per window per key)."""
        resets = self._resets
        if opened:
            reset = now + spec.window
        else:
            reset = resets.get(spec.key, 0.0)
            if reset > now:
                return reset
            reset = await self.storage.get_expiry(spec.key)
        if len(resets) >= _CACHE_MAX:
            resets.clear()
        resets[spec.key] = reset
        return reset

    def reserve_now(self, subject: str, model_id: str, tokens: int) -> Reservation | None:
        """:meth:`reserve` without awaiting, on the in-process store and within every limit;
        None otherwise (nothing counted: then ``await reserve(...)`` says what happens)."""
        storage = self._storage
        if type(storage) is not _Memory:
            return None
        specs = self._specs.get((subject, model_id)) or self.specs(subject, model_id)
        now = time.time()
        cells = storage.take(specs, tokens, now)
        if cells is None:
            return None
        headers: list[tuple[bytes, bytes]] = []
        tokens_at: list[tuple[_Spec, float]] = []
        for spec, (used, end) in zip(specs, cells):  # (within every limit: no remaining count below 0)
            if spec.first:
                headers += (spec._limit_header, (spec._remaining, b"%d" % (spec.limit - used)),
                            (spec._reset, _duration_bytes(end - now)))
            if spec.tokens:
                tokens_at.append((spec, end))
        return Reservation(storage, tokens_at, tokens, headers)

    async def reserve(self, subject: str, model_id: str, tokens: int) -> Reservation:
        """Count one request of ``tokens`` estimated tokens; raises ``RateLimited`` if over."""
        done = self.reserve_now(subject, model_id, tokens)
        if done is not None:
            return done
        specs = self._specs.get((subject, model_id)) or self.specs(subject, model_id)
        storage = self.storage
        cell = getattr(storage, "cell", None)  # the in-process store: a counter and its window end at once
        hit = getattr(storage, "hit", None)  # a store's plain (non-async) increment
        resets = self._resets
        now = time.time()
        headers: list[tuple[bytes, bytes]] = []
        taken: list[tuple[_Spec, int, float]] = []  # (spec, count after this request, window end)
        for spec in specs:
            cost = tokens if spec.tokens else 1
            if cost > spec.limit:  # can never fit, whatever the wait
                await _give_back(storage, taken, tokens)
                raise RateLimited(
                    f"Request too large for {model_id} in organization {_ORG} on {spec.label}: Limit "
                    f"{spec.limit}, Requested {cost}. The input or output tokens must be reduced in order "
                    f"to run successfully. {_LEARN}", spec.kind, None, [])
            if cell is not None:
                used, reset_at = cell(spec.key, spec.window, cost, now)
            else:
                used = hit(spec.key, spec.window, cost) if hit else await storage.incr(spec.key, spec.window, cost)
                reset_at = 0.0
            if used > spec.limit:
                await storage.incr(spec.key, spec.window, -cost)
                await _give_back(storage, taken, tokens)
                # (others' momentary increments may push the count past the limit: never report more)
                raise await self._refused(specs, taken, spec, min(used - cost, spec.limit), tokens, model_id, now)
            if cell is None:
                reset_at = resets.get(spec.key, 0.0)
                if used == cost or reset_at <= now:
                    reset_at = await self._reset_at(spec, used == cost, now)
            taken.append((spec, used, reset_at))
            if spec.first:
                headers += spec.headers(used, reset_at - now)
        return Reservation(storage, [(s, r) for s, _, r in taken if s.tokens], tokens, headers)

    async def _refused(self, specs, taken, spec: _Spec, used: int, tokens: int, model_id: str,
                       now: float) -> RateLimited:
        """The 429 of a request over ``spec``, with every counter as it stands in its headers."""
        wait = max(await self._reset_at(spec, False, now) - now, 0.001)
        cost = tokens if spec.kind == "tokens" else 1
        counts = {s.key: (u - (tokens if s.kind == "tokens" else 1), r) for s, u, r in taken}  # given back
        headers: list[tuple[bytes, bytes]] = []
        for s in specs:
            if not s.first:
                continue
            if s is spec:
                u, r = used, now + wait
            elif s.key in counts:
                u, r = counts[s.key]
            else:
                u = await self.storage.get(s.key)
                r = await self._reset_at(s, False, now) if u else now
            headers += s.headers(u, r - now)
        return RateLimited(
            f"Rate limit reached for {model_id} in organization {_ORG} on {spec.label}: Limit {spec.limit}, "
            f"Used {used}, Requested {cost}. Please try again in {duration(wait)}. {_LEARN}",
            spec.kind, wait, headers)


def _scaled(per_minute: int, quantum: int | None) -> int:
    return max(1, per_minute * quantum // 60) if quantum else per_minute


async def _give_back(storage, taken: list[tuple[_Spec, int, float]], tokens: int) -> None:
    for spec, _, _ in taken:
        await storage.incr(spec.key, spec.window, -(tokens if spec.kind == "tokens" else 1))


class _Memory:
    """The in-process counters: ``key -> [count, window end]`` in one dict.

    (``limits``' MemoryStorage re-arms a ``threading.Timer`` per increment to purge
    expired counters, which cost the event loop ~25 µs per request under load, and keeps
    counts and expiries in separate dicts; docs/benchmarks.md.) A counter whose window is
    over starts again when next touched, and a sweep at most once a second drops the
    others, so memory stays bounded. Every update is a plain call that never yields, so
    concurrent requests on the event loop are counted exactly.
    """

    def __init__(self) -> None:
        self._counters: dict[str, list] = {}
        self._sweep_at = time.monotonic() + 1.0

    def hit(self, key: str, expiry: int, amount: int) -> int:
        """Add ``amount`` to the counter (a new window if its last one is over); the new count."""
        return self.cell(key, expiry, amount, time.time())[0]

    def take(self, specs, tokens: int, now: float) -> list[list] | None:
        """Count one request of ``tokens`` in each of ``specs``' counters, all or nothing:
        the counters (``[count, window end]``), or None if that would go over any limit
        (then nothing is counted). One call that never yields: exact under concurrency."""
        counters = self._counters
        cells = []
        for spec in specs:
            cost = tokens if spec.tokens else 1
            c = counters.get(spec.key)
            if c is None or c[1] <= now or not c[0]:  # a new window (an emptied counter starts one too)
                if cost > spec.limit:
                    return self._undo(specs, cells, tokens)
                c = counters[spec.key] = [cost, now + spec.window]
                if time.monotonic() >= self._sweep_at:
                    self._sweep()
                    counters = self._counters
            else:
                c[0] += cost
                if c[0] > spec.limit:
                    c[0] -= cost
                    return self._undo(specs, cells, tokens)
            cells.append(c)
        return cells

    @staticmethod
    def _undo(specs, cells: list[list], tokens: int) -> None:
        for spec, c in zip(specs, cells):
            c[0] -= tokens if spec.tokens else 1

    def cell(self, key: str, expiry: int, amount: int, now: float) -> list:
        """:meth:`hit` at ``now``, returning the counter itself: ``[count, window end]``."""
        c = self._counters.get(key)
        if c is None or c[1] <= now or not c[0]:  # a new window (an emptied counter starts one too)
            c = self._counters[key] = [amount, now + expiry]
            if time.monotonic() >= self._sweep_at:
                self._sweep()
            return c
        c[0] += amount
        return c

    async def incr(self, key: str, expiry: int, amount: int) -> int:
        return self.hit(key, expiry, amount)

    def _sweep(self) -> None:
        now = time.time()
        self._counters = {k: c for k, c in self._counters.items() if c[1] > now}
        self._sweep_at = time.monotonic() + 1.0

    async def get(self, key: str) -> int:
        c = self._counters.get(key)
        return c[0] if c is not None and c[1] > time.time() else 0

    async def get_expiry(self, key: str) -> float:
        c = self._counters.get(key)
        return c[1] if c is not None else time.time()

    def __len__(self) -> int:
        now = time.time()
        return sum(1 for c in self._counters.values() if c[1] > now)


def storage_for(settings, shared_dir: str | None = None):
    """A factory of the counters' storage: Redis (shared by replicas) when ``store`` is redis;
    with several server processes and no Redis, a SQLite file in ``shared_dir`` they share."""
    if settings.store == "redis":
        url = settings.redis_url

        def redis():
            from limits.aio.storage import RedisStorage
            return RedisStorage("async+" + url, implementation="redispy", key_prefix="fakeai-limits")
        return redis
    if shared_dir is not None:
        def shared():
            import os

            from .shared_counters import SharedCounters
            return SharedCounters(os.path.join(shared_dir, "ratelimits.sqlite"))
        return shared
    return _Memory
