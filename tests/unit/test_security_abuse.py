"""Per-IP abuse tracking: thresholds per kind, escalating bans, lifting, bounded memory."""

from __future__ import annotations

import pytest

from fakeai.security import abuse as abuse_mod
from fakeai.security.abuse import AbuseTracker, Thresholds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1.7e9 + self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(abuse_mod, "time", c)
    return c


LIMITS = Thresholds(window_s=10, auth=3, ratelimit=5, oversize=2, injection=1, ban_s=60, max_ban_s=200)


@pytest.mark.parametrize("kind, n", [("auth", 3), ("ratelimit", 5), ("oversize", 2), ("injection", 1)])
def test_each_kind_bans_at_its_threshold(clock, kind, n):
    t = AbuseTracker(LIMITS)
    for _ in range(n - 1):
        assert t.record("1.2.3.4", kind) == 0
    assert t.banned("1.2.3.4") == 0
    assert t.record("1.2.3.4", kind) == 60
    assert t.banned("1.2.3.4") == 60
    assert t.banned("5.6.7.8") == 0
    (ban,) = t.bans()
    assert (ban["ip"], ban["reason"], ban["bans"]) == ("1.2.3.4", kind, 1)


def test_strikes_outside_the_window_are_forgotten(clock):
    t = AbuseTracker(LIMITS)
    t.record("ip", "auth")
    t.record("ip", "auth")
    clock.now += 11
    assert t.record("ip", "auth") == 0  # the first two fell out of the 10 s window
    assert t.banned("ip") == 0


def test_bans_escalate_expire_and_cap(clock):
    t = AbuseTracker(LIMITS)
    lengths = []
    for _ in range(4):
        for _ in range(2):
            got = t.record("ip", "oversize")
        lengths.append(got)
        clock.now += got - 0.5
        assert t.banned("ip") == pytest.approx(0.5)
        clock.now += 1
        assert t.banned("ip") == 0  # expired on its own
    assert lengths == [60, 120, 200, 200]  # doubled each time, capped at max_ban_s


def test_lifting_a_ban_keeps_the_escalation(clock):
    t = AbuseTracker(LIMITS)
    t.record("ip", "injection")
    assert t.lift("ip") and t.banned("ip") == 0
    assert not t.lift("ip") and not t.lift("other")
    assert t.record("ip", "injection") == 120
    t.record("ip2", "injection")
    assert t.lift_all() == 2 and t.bans() == []


def test_memory_is_bounded_and_bans_are_kept(clock):
    t = AbuseTracker(LIMITS, max_ips=100)
    t.record("banned", "injection")
    for i in range(5000):
        t.record(f"10.0.{i // 256}.{i % 256}", "auth")
    assert len(t) <= 100
    assert t.banned("banned") > 0  # tracked IPs without a ban go first
