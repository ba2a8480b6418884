"""Record from an upstream (a second fakeai: no test touches a real one), then replay the cassettes."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import pytest

from tests.openapi_spec import validate, validate_error
from tests.server import run_server, stop

MODEL = "gpt-4o-mini"
STREAM = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 20,
          "stream": True, "seed": 3}
PLAIN = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
MISSING_MODEL = {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}
TTFT, ITL = 0.08, 0.015


@dataclass
class Take:
    status: int
    body: bytes
    times: list[float] = field(default_factory=list)  # arrival of each chunk, from the request


def take(http: httpx.Client, body: dict, **kw) -> Take:
    t0 = time.monotonic()
    with http.stream("POST", "/v1/chat/completions", json=body, **kw) as r:
        chunks, times = [], []
        for c in r.iter_raw():
            chunks.append(c)
            times.append(time.monotonic() - t0)
    return Take(r.status_code, b"".join(chunks), times)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Cassettes of a streamed, a plain and a failing request, recorded through a proxying fakeai;
    then what the proxy answers once its upstream is gone."""
    data = tmp_path_factory.mktemp("recorder")
    d = data / "cassettes"  # where record mode puts them without --cassette-dir
    with ExitStack() as stack:
        upstream = stack.enter_context(run_server("--ttft", str(TTFT * 1000), "--itl", str(ITL * 1000)))
        rec = stack.enter_context(run_server("--record-upstream", upstream.api_url, "--data-dir", str(data)))
        http = rec.http()
        takes = {"stream": take(http, STREAM), "plain": take(http, PLAIN), "missing": take(http, MISSING_MODEL)}
        # the official SDK works through the recording proxy (its own key reaches the upstream)
        sdk = rec.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "sdk"}],
                                                   max_tokens=5)
        validate("CreateChatCompletionResponse", sdk.model_dump(exclude_unset=True))
        stop(upstream.proc)
        takes["down"] = take(http, {**PLAIN, "max_tokens": 3})
    return d, takes


def test_recording_passes_the_upstream_through(recorded):
    d, takes = recorded
    s = takes["stream"]
    assert s.status == 200 and s.body.endswith(b"data: [DONE]\n\n")
    assert len(s.times) > 3  # streamed as it came, not buffered
    assert s.times[0] >= TTFT and s.times[-1] >= TTFT + ITL * 18
    validate("CreateChatCompletionResponse", json.loads(takes["plain"].body))
    assert takes["missing"].status == 404
    files = sorted(p.name for p in d.iterdir())
    assert len(files) == 4 and all(f.startswith("post-v1-chat-completions-") and f.endswith(".json") for f in files)
    doc = json.loads(next(p for p in d.iterdir() if b"Tell me a story" in p.read_bytes()).read_text())
    assert doc["request"]["body"] == STREAM and doc["response"]["status"] == 200
    offsets = [c["t"] for c in doc["response"]["chunks"]]
    assert offsets == sorted(offsets) and offsets[0] >= TTFT
    headers = dict(doc["response"]["headers"])
    assert headers["content-type"].startswith("text/event-stream") and "x-request-id" not in headers


def test_replay_gives_identical_bytes_and_similar_timing(recorded):
    d, takes = recorded
    with run_server("--cassette-dir", str(d)) as rep:  # the upstream is gone
        http = rep.http()
        # key order and headers do not matter: the canonical body does
        again = take(http, dict(reversed(list(STREAM.items()))), headers={"Authorization": "Bearer other"})
        s = takes["stream"]
        assert again.status == 200 and again.body == s.body
        assert len(again.times) > 3
        assert again.times[0] >= TTFT * 0.9  # the recorded time to the first chunk
        assert again.times[-1] >= TTFT + ITL * 18 and again.times[-1] < s.times[-1] + 1.0
        for name, body in (("plain", PLAIN), ("missing", MISSING_MODEL)):
            t = take(http, body)
            assert (t.status, t.body) == (takes[name].status, takes[name].body)
        miss = http.post("/v1/chat/completions", json={**PLAIN, "max_tokens": 9})
        assert miss.status_code == 404 and miss.json()["error"]["code"] == "cassette_not_found"
        validate_error(miss.json())
        assert http.get("/health").status_code == 200  # only /v1 is replayed


def test_replay_can_fall_back_to_generation(recorded):
    d, takes = recorded
    env = {"FAKEAI_CASSETTE_DIR": str(d), "FAKEAI_REPLAY_MISS": "generate"}
    with run_server("--ttft", "0", "--itl", "0", env=env) as rep:
        http = rep.http()
        assert take(http, PLAIN).body == takes["plain"].body
        miss = http.post("/v1/chat/completions", json={**PLAIN, "max_tokens": 9})
        assert miss.status_code == 200
        validate("CreateChatCompletionResponse", miss.json())
        assert miss.content != takes["plain"].body


def test_an_unreachable_upstream_is_a_502(recorded):
    d, takes = recorded
    down = takes["down"]
    assert down.status == 502
    body = json.loads(down.body)
    validate_error(body)
    assert body["error"]["code"] == "upstream_unavailable"
    assert len(list(d.iterdir())) == 4  # nothing recorded
