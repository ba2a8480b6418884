"""Per-IP abuse tracking and escalating temporary bans.

Four kinds of strike are counted per client IP over a sliding window
(``abuse_window_s``): failed authentications, rate-limit refusals, oversized
payloads and detected prompt injections. When one kind reaches its threshold the
IP is banned for ``abuse_ban_s``, doubled for each earlier ban of that IP, up to
``abuse_max_ban_s``; a banned IP gets 403 with ``Retry-After`` on every route.

Memory is bounded: at most ``MAX_IPS`` IPs are tracked (the least recently seen is
dropped first), and an IP's strikes older than the window are forgotten.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

MAX_IPS = 10_000
KINDS = ("auth", "ratelimit", "oversize", "injection")


@dataclass(slots=True)
class _Ip:
    strikes: dict[str, deque] = field(default_factory=dict)  # kind -> timestamps in the window
    bans: int = 0  # bans so far (for escalation)
    until: float = 0.0  # monotonic time the current ban ends
    since: float = 0.0
    wall_until: float = 0.0
    reason: str = ""


@dataclass(slots=True)
class Thresholds:
    window_s: float = 60.0
    auth: int = 10
    ratelimit: int = 50
    oversize: int = 5
    injection: int = 3
    ban_s: float = 60.0
    max_ban_s: float = 3600.0

    @classmethod
    def from_settings(cls, s) -> Thresholds:
        return cls(s.abuse_window_s, s.abuse_auth_failures, s.abuse_rate_limit_hits, s.abuse_oversized,
                   s.abuse_injections, s.abuse_ban_s, s.abuse_max_ban_s)


class AbuseTracker:
    def __init__(self, limits: Thresholds, max_ips: int = MAX_IPS) -> None:
        self.limits = limits
        self.max_ips = max_ips
        self._ips: OrderedDict[str, _Ip] = OrderedDict()

    def banned(self, ip: str) -> float:
        """Seconds left of ``ip``'s ban (0 when it is not banned)."""
        entry = self._ips.get(ip)
        if entry is None or not entry.until:
            return 0.0
        left = entry.until - time.monotonic()
        if left <= 0:
            entry.until = 0.0
            return 0.0
        return left

    def record(self, ip: str, kind: str) -> float:
        """Count one strike; returns the new ban's length in seconds if this one bans."""
        now = time.monotonic()
        entry = self._ips.get(ip)
        if entry is None:
            entry = self._ips[ip] = _Ip()
            if len(self._ips) > self.max_ips:
                self._evict(now)
        else:
            self._ips.move_to_end(ip)
        hits = entry.strikes.setdefault(kind, deque())
        cutoff = now - self.limits.window_s
        while hits and hits[0] <= cutoff:
            hits.popleft()
        hits.append(now)
        threshold = getattr(self.limits, kind)
        while len(hits) > threshold:
            hits.popleft()
        if len(hits) < threshold or entry.until > now:
            return 0.0
        hits.clear()
        length = min(self.limits.ban_s * (2 ** entry.bans), self.limits.max_ban_s)
        entry.bans += 1
        entry.since, entry.until = now, now + length
        entry.wall_until = time.time() + length
        entry.reason = kind
        return length

    def _evict(self, now: float) -> None:
        """Drop the least recently seen IP that is not banned (or the oldest if all are)."""
        for ip, entry in self._ips.items():
            if entry.until <= now:
                del self._ips[ip]
                return
        self._ips.popitem(last=False)

    def bans(self) -> list[dict]:
        now = time.monotonic()
        return [{"object": "ban", "ip": ip, "reason": e.reason, "bans": e.bans,
                 "expires_at": int(e.wall_until), "retry_after_s": round(e.until - now, 3)}
                for ip, e in self._ips.items() if e.until > now]

    def lift(self, ip: str) -> bool:
        """End ``ip``'s ban and clear its strikes; its ban count (escalation) is kept."""
        entry = self._ips.get(ip)
        if entry is None or entry.until <= time.monotonic():
            return False
        entry.until = 0.0
        entry.strikes.clear()
        return True

    def lift_all(self) -> int:
        return sum(self.lift(ip) for ip in list(self._ips))

    def __len__(self) -> int:
        return len(self._ips)
