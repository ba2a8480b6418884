"""The fault grammar (X-FakeAI-Fault, fault_* settings) and the ``Faults`` draws."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeai.security.fault_spec import Fault, parse_duration, parse_fault, parse_rate, parse_rule, parse_window_rule
from fakeai.security.faults import Faults, endpoint_of


def make(clock=lambda: 0.0, **kw) -> Faults:
    base = {"fault_rate": 0.0, "fault_types": ["429", "500", "503"], "fault_rates": [], "fault_schedule": [],
            "fault_seed": None, "fault_header": True}
    return Faults(SimpleNamespace(**{**base, **kw}), clock=clock)


# -- grammar --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("503", Fault(error="503")),
    ("429", Fault(error="429")),
    ("529", Fault(error="overloaded")),
    ("overloaded", Fault(error="overloaded")),
    ("401", Fault(error="invalid_api_key")),
    ("invalid_api_key", Fault(error="invalid_api_key")),
    ("Context-Length", Fault(error="context_length_exceeded")),
    ("429, retry-after=250ms", Fault(error="429", retry_after=0.25)),
    ("timeout", Fault(timeout=30.0)),
    ("timeout=2s", Fault(timeout=2.0)),
    ("timeout=1m", Fault(timeout=60.0)),
    ("cut-after=5", Fault(cut_after=5)),
    ("error-after=0", Fault(error_after=0)),
    ("malformed_after=3", Fault(malformed_after=3)),
    ("stall=2s", Fault(stall_after=0, stall=2.0)),
    ("stall-after=3:1.5s", Fault(stall_after=3, stall=1.5)),
    ("drip=50ms", Fault(drip=0.05)),
    ("truncate-tools", Fault(truncate_tools=True)),
    ("drip=10ms; cut-after=7; truncate-tools", Fault(drip=0.01, cut_after=7, truncate_tools=True)),
])
def test_valid_specs(text, expected):
    assert parse_fault(text) == expected


@pytest.mark.parametrize("text, needle", [
    ("", "empty"),
    ("5033", "unknown fault"),
    ("cut-after=x", "whole number"),
    ("cut-after=-1", "whole number"),
    ("stall=2", "duration"),
    ("stall-after=3", "N:DURATION"),
    ("drip=fast", "duration"),
    ("timeout=2d", "duration"),
    ("timeout=4000s", "at most 1 hour"),
    ("timeout=61m", "at most 1 hour"),
    ("503,503", "twice"),
    ("503,timeout=1s", "not both"),
    ("503,cut-after=2", "never streams"),
    ("timeout=1s,truncate-tools", "never streams"),
    ("retry-after=1s", "goes with an error"),
    ("cut-after=2,error-after=3", "ends once"),
    ("truncate-tools=yes", "unknown fault"),
])
def test_invalid_specs_name_the_problem(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_fault(text)


def test_kinds_are_the_counter_labels():
    assert parse_fault("503").kinds() == ["503"]
    assert parse_fault("529").kinds() == ["overloaded"]
    assert parse_fault("timeout=1s").kinds() == ["timeout"]
    f = parse_fault("drip=1ms,cut-after=2,malformed-after=1,stall=1s,truncate-tools")
    assert f.kinds() == ["cut", "malformed", "stall", "drip", "truncate_tools"]
    assert f.streams and not f.pre_response
    assert parse_fault("truncate-tools").streams is False


@given(st.integers(0, 3_600_000))
def test_durations_round_trip_in_ms(ms):
    assert parse_duration(f"{ms}ms") == pytest.approx(ms / 1000)
    if ms <= 3600:
        assert parse_duration(f"{ms}s") == ms


@pytest.mark.parametrize("text, value", [("0", 0.0), ("1", 1.0), ("0.25", 0.25), ("20%", 0.2), ("100%", 1.0)])
def test_rates(text, value):
    assert parse_rate(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["1.5", "-0.1", "120%", "nan", "lots"])
def test_bad_rates(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_rules_and_windows():
    r = parse_rule("20% cut-after=3;drip=5ms /v1/chat/completions")
    assert (r.rate, r.endpoint, r.fault) == (0.2, "/v1/chat/completions", Fault(cut_after=3, drip=0.005))
    w = parse_window_rule("30s-90s 0.5 503")
    assert (w.start, w.end, w.rate, w.endpoint) == (30.0, 90.0, 0.5, None)
    assert not w.live(29.9) and w.live(30) and w.live(89.9) and not w.live(90)
    assert parse_window_rule("60s- 5% 500").end == math.inf
    assert parse_window_rule("0-500ms 1 503").end == 0.5
    assert parse_window_rule("1h-2.5h 1 503").end == 9000.0
    for bad in ("503", "20% 503 chat", "20% 503 /a /b", "90s-30s 1 503", "soon 1 503", "1s-2s 20%"):
        with pytest.raises(ValueError):
            (parse_window_rule if "s-" in bad or bad.startswith("soon") else parse_rule)(bad)


def test_endpoint_labels_fold_ids():
    assert endpoint_of("/v1/chat/completions") == "/v1/chat/completions"
    assert endpoint_of("/v1/files/file-abc123/content") == "/v1/files/{id}/content"
    assert endpoint_of("/v1/models/gpt-4o-mini") == "/v1/models/{id}"


# -- draws ------------------------------------------------------------------------------------

def draws(f: Faults, endpoint: str, n: int) -> list[str | None]:
    out = []
    for _ in range(n):
        fault = f.draw(endpoint)
        out.append(None if fault is None else fault.spec)
    return out


def test_no_rule_no_draw():
    f = make()
    assert not f.active and f.draw("/v1/chat/completions") is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32))
def test_a_seed_makes_the_draws_reproducible(seed):
    a = make(fault_rates=["30% 503", "10% 429"], fault_seed=seed)
    b = make(fault_rates=["30% 503", "10% 429"], fault_seed=seed)
    assert draws(a, "/v1/chat/completions", 200) == draws(b, "/v1/chat/completions", 200)


def test_rates_per_type_and_endpoint():
    n = 20000
    f = make(fault_rates=["30% 503 /v1/embeddings", "10% 500"], fault_seed=3)
    chat = draws(f, "/v1/chat/completions", n)
    emb = draws(f, "/v1/embeddings", n)
    sd = math.sqrt(0.3 * 0.7 / n)
    assert chat.count("503") == 0
    assert abs(chat.count("500") / n - 0.1) < 5 * sd
    assert abs(emb.count("503") / n - 0.3) < 5 * sd
    assert abs(emb.count("500") / n - 0.1) < 5 * sd


def test_fault_rate_splits_evenly_over_the_types():
    n = 30000
    f = make(fault_rate=0.6, fault_types=["502", "504", "timeout=1s"], fault_seed=1)
    got = draws(f, "/v1/completions", n)
    for spec in ("502", "504", "timeout=1s"):
        assert abs(got.count(spec) / n - 0.2) < 0.02
    assert abs(got.count(None) / n - 0.4) < 0.02


def test_schedule_windows_follow_the_clock():
    now = [0.0]
    f = make(fault_schedule=["10s-20s 100% 503"], clock=lambda: now[0])
    for t, expected in ((0, None), (9.99, None), (10, "503"), (19.9, "503"), (20, None), (500, None)):
        now[0] = t
        assert (f.draw("/v1/x") or Fault()).error == expected, t


def test_configure_is_validated_and_all_or_nothing():
    f = make(fault_rates=["100% 503"])
    for bad in ({"nope": 1}, {"rate": 2}, {"rate": True}, {"rates": "100% 500"}, {"rates": ["100% 5000"]},
                {"seed": "x"}, {"header": "yes"}, {"rate": 0.5, "types": []}, {"schedule": ["1 503"]}):
        with pytest.raises(ValueError):
            f.configure(bad)
    assert f.draw("/v1/x").error == "503"  # unchanged
    f.configure({"rates": [], "header": False})
    assert not f.active and not f.header_allowed
    f.configure({"rate": 1.0})  # the types given at start-up still hold
    assert f.draw("/v1/x").spec in ("429", "500", "503")


def test_a_new_schedule_counts_from_its_change():
    now = [100.0]
    f = make(clock=lambda: now[0])
    f.configure({"schedule": ["1s-2s 100% 500"]})
    now[0] = 100.5
    assert f.draw("/v1/x") is None
    now[0] = 101.5
    assert f.draw("/v1/x").error == "500"


def test_counts_by_type_and_endpoint():
    f = make()
    f.record(["503"], "/v1/chat/completions")
    f.record(["503"], "/v1/chat/completions")
    f.record(["cut", "drip"], "/v1/messages")
    assert f.counts() == {("503", "/v1/chat/completions"): 2, ("cut", "/v1/messages"): 1,
                          ("drip", "/v1/messages"): 1}
