"""The metrics statistics: quantile sketches accurate within their bound and bounded in memory,
the per-cell aggregation merged into scopes, the history ring and the merge-patch deltas."""

from __future__ import annotations

import math
import random
import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeai.engine.events import RequestRecord
from fakeai.telemetry.history import History
from fakeai.telemetry.keyids import KeyIds
from fakeai.telemetry.sketch import ACCURACY, Sketch, Window, index
from fakeai.telemetry.stats import MAX_LABELS, OTHER, Stats
from fakeai.telemetry.stream import merge_patch

QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact(sorted_values: list[float], q: float) -> float:
    """The value of rank ``q`` (the sketch's definition: index floor(q * (n - 1)))."""
    return sorted_values[int(q * (len(sorted_values) - 1))]


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "exponential", "bimodal"])
def test_quantiles_within_relative_accuracy(dist):
    rng = random.Random(dist)
    gen = {"lognormal": lambda: rng.lognormvariate(-3, 1.5), "uniform": lambda: rng.uniform(0.001, 2.0),
           "exponential": lambda: rng.expovariate(20.0),
           "bimodal": lambda: rng.gauss(0.02, 0.002) if rng.random() < 0.7 else rng.gauss(1.5, 0.1)}[dist]
    values = [abs(gen()) for _ in range(50_000)]
    sk = Sketch()
    for v in values:
        sk.add(v)
    values.sort()
    got = sk.quantiles(QS)
    for q, g in zip(QS, got):
        want = exact(values, q)
        assert g == pytest.approx(want, rel=ACCURACY * 1.0001), (q, g, want)
    s = sk.summary()
    assert s["count"] == len(values)
    assert s["mean"] == pytest.approx(sum(values) / len(values), rel=1e-9)
    assert s["max"] == values[-1]


def test_zero_and_weighted_observations():
    sk = Sketch()
    for _ in range(90):
        sk.add(0.0)
    sk.add_at(index(0.5), 0.5, 10)
    assert sk.count == 100
    assert sk.quantile(0.5) == 0.0
    assert sk.quantile(0.95) == pytest.approx(0.5, rel=ACCURACY)
    assert Sketch().summary()["p50"] is None


def test_memory_is_bounded_by_the_range_not_the_count():
    rng = random.Random(1)
    sk = Sketch()
    sizes = []
    for n in (10_000, 100_000, 300_000):
        while sk.count < n:
            sk.add(10 ** rng.uniform(-6, 3))  # a microsecond to 1000 s
        sizes.append(len(sk.buckets))
    bound = math.log(1e9) / math.log((1 + ACCURACY) / (1 - ACCURACY)) + 2
    assert sizes[-1] <= bound
    assert sizes[-1] - sizes[0] < 0.1 * bound  # 30x the observations, about the same buckets


def test_window_forgets_old_slices():
    w = Window(slices=6, width=10.0)
    for t, v in ((0.0, 1.0), (15.0, 2.0), (65.0, 3.0)):
        cell = w.current(t)
        cell[0] += 1
        cell[1].add(index(v), v, 0, 0.0, 0, index(v), v, index(v), v)
    count, d = w.merged(65.0)
    assert count == 2  # the slice of t=0 is over 60 s old
    assert d.ttft.summary()["max"] == 3.0
    assert d.ttft.quantile(0.0) == pytest.approx(2.0, rel=ACCURACY)
    assert w.merged(200.0)[0] == 0
    assert len(w._slices) <= 6


def _record(model="m", stream=False, reason="stop", ttft=0.1, itl=0.01, tokens=11, prompt=20, worker=0):
    return RequestRecord(model=model, worker=worker, endpoint="chat", arrival=10.0, scheduled=10.02,
                         first_token=10.0 + ttft, finished=10.0 + ttft + itl * (tokens - 1), prompt_tokens=prompt,
                         cached_tokens=4, completion_tokens=tokens, max_tokens=None, n=1, finish_reason=reason,
                         stream=stream)


def _scope(path="/v1/chat/completions", key="sk-one"):
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    return {"type": "http", "path": path, "headers": headers, "state": {}}


def _request(stats, record=None, path="/v1/chat/completions", key="sk-one", status=200, stream=False, body=b""):
    tr = stats.begin(_scope(path, key))
    ctype = b"text/event-stream; charset=utf-8" if stream else b"application/json"
    tr.start({"type": "http.response.start", "status": status, "headers": [(b"content-type", ctype)]})
    if tr.error:
        tr.body({"type": "http.response.body", "body": body})
    if record is not None:
        stats.observe(record)
    tr.end()


def test_cells_merge_into_every_scope():
    stats = Stats(KeyIds(b"k" * 32))
    for i in range(30):
        _request(stats, _record("a", stream=i % 3 == 0), key="sk-one")
    for _ in range(10):
        _request(stats, _record("b"), key="sk-two")
    _request(stats, None, key="sk-two", status=404,
             body=b'{"error":{"message":"x","type":"invalid_request_error","param":"model","code":"model_not_found"}}')
    _request(stats, None, path="/metrics/json", key=None)
    m = stats.merged()
    assert m.all.total == 41 and m.all.completed == 40  # /metrics/json is not API traffic
    assert m.endpoints["/v1/chat/completions"].total == 41 and m.endpoints["/metrics/json"].total == 1
    assert m.models["a"].completed == 30 and m.models["b"].completed == 10
    assert m.models["a"].s_completed == 10
    one, two = KeyIds(b"k" * 32).key_id("sk-one"), KeyIds(b"k" * 32).key_id("sk-two")
    assert m.keys[one].total == 30 and m.keys[two].total == 11
    assert m.keys[two].err_code == {"model_not_found": 1} and m.keys[two].by_status == {200: 10, 404: 1}
    assert m.all.completion == 40 * 11 and m.all.cached == 40 * 4
    assert m.all.lat.itl.count == 40 * 10  # one observation per gap
    assert m.all.lat.ttft.quantile(0.5) == pytest.approx(0.1, rel=ACCURACY)
    assert stats.in_flight["/v1/chat/completions"] == 0
    doc = stats.scope_doc(m.all, 0, 0, True)
    assert doc["recent"]["requests"] == 40
    assert doc["errors"] == {"total": 1, "by_status": {"404": 1}, "by_type": {"invalid_request_error": 1},
                             "by_code": {"model_not_found": 1}}


def test_active_streams_and_unanswered_requests():
    stats = Stats(KeyIds(b"k" * 32))
    tr = stats.begin(_scope())
    tr.start({"status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    assert stats.api_streams() == 1 and stats.api_in_flight() == 1
    stats.observe(_record(stream=True, reason="abort"))
    tr.end()
    assert stats.api_streams() == 0 and stats.api_in_flight() == 0
    gone = stats.begin(_scope())
    gone.end()  # the client left before any answer
    failed = stats.begin(_scope())
    failed.end(failed=True)
    m = stats.merged()
    assert m.all.by_status == {200: 1, 499: 1, 500: 1}
    assert m.all.s_cancelled == 1 and m.all.cancelled == 1


def test_labels_are_capped():
    stats = Stats(KeyIds(b"k" * 32))
    for i in range(MAX_LABELS + 50):
        _request(stats, _record(f"model-{i}"), key=f"sk-key-{i}")
    m = stats.merged()
    assert len(m.models) == MAX_LABELS + 1 and OTHER in m.models
    assert len(m.keys) == MAX_LABELS + 1
    assert sum(a.completed for a in m.models.values()) == MAX_LABELS + 50


def test_observing_is_cheap():
    stats = Stats(KeyIds(b"k" * 32))
    scope = _scope()
    rec = _record()
    start = {"status": 200, "headers": [(b"content-type", b"application/json")]}
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(2000):
            tr = stats.begin(scope)
            stats.observe(rec)
            tr.start(start)
            tr.end()
        best = min(best, (time.perf_counter() - t0) / 2000)
    assert best < 40e-6  # about 5 us on the 2-core machine; generous for a loaded one


class _Doc:
    def __init__(self) -> None:
        self.n = 0

    def document(self, families=None):
        self.n += 1
        return {"object": "metrics", "time": float(self.n), "payload": "x" * 100}


def test_history_ring_is_bounded_and_filters_by_time(tmp_path):
    path = tmp_path / "h.jsonl"
    h = History(_Doc(), 1.0, 5, str(path))
    for _ in range(12):
        h.take()
    assert len(h) == 5
    entries = [orjson.loads(e) for e in h.entries()]
    assert [e["time"] for e in entries] == [8.0, 9.0, 10.0, 11.0, 12.0]
    assert [orjson.loads(e)["time"] for e in h.entries(since=10.0)] == [11.0, 12.0]
    assert len(h.entries(limit=2)) == 2
    h._file.close()
    assert len(path.read_text().splitlines()) == 12  # the file keeps every entry


def _apply(state, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return patch
    out = dict(state) if isinstance(state, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _apply(out.get(k), v)
    return out


def _strip_none(doc):
    if isinstance(doc, dict):
        return {k: _strip_none(v) for k, v in doc.items() if v is not None}
    return doc


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2, allow_nan=False) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abcde"), children, max_size=4),
    max_leaves=20)
docs = st.dictionaries(st.sampled_from("abcdefg"), json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(docs, docs)
def test_merge_patch_turns_old_into_new(old, new):
    assert _apply(_strip_none(old), merge_patch(old, new)) == _strip_none(new)
