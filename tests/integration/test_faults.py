"""Fault injection through the real server: the X-FakeAI-Fault header, the fault_* settings,
what the official SDKs see, and the counts in /metrics."""

from __future__ import annotations

import json
import math
import re
import time
import uuid

import anthropic
import httpx
import openai
import pytest

from tests.openapi_spec import validate, validate_error
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
CLAUDE = "claude-3-7-sonnet-20250219"
MSGS = [{"role": "user", "content": "Tell me about the weather."}]
CHAT = {"model": MODEL, "messages": MSGS, "max_tokens": 12}
EMB = {"model": "text-embedding-3-small", "input": "hello"}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city", "unit"]}}}]

FLAKY = """\
scenarios:
  - name: fails once
    match: {headers: {x-case: flaky}}
    sequence:
      - fault: "429, retry-after=300ms"
      - content: recovered
  - name: stream then fail
    match: {headers: {x-case: stream-error}}
    output: {fault: error-after=2}
  - name: too long
    match: {headers: {x-case: too-long}}
    output: {fault: context-length}
"""


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "flaky.yaml"
    path.write_text(FLAKY, encoding="utf-8")
    with run_server("--ttft", "0", "--itl", "0", "--scenarios-file", str(path)) as s:
        yield s


def fault(spec: str) -> dict:
    return {"X-FakeAI-Fault": spec}


def events(http: httpx.Client, path: str, body: dict, headers: dict) -> list[tuple[float, str]]:
    """(seconds since the request, data line) of each SSE data line, until the stream ends."""
    t0 = time.monotonic()
    out = []
    with http.stream("POST", path, json=body, headers=headers) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append((time.monotonic() - t0, line[6:]))
    return out


def counts(server) -> dict[tuple[str, str], float]:
    text = server.http().get("/metrics").text
    out = {}
    for m in re.finditer(r'^fakeai_injected_faults_total\{(.*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[(labels["type"], labels["endpoint"])] = float(m.group(2))
    return out


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, status, etype, code", [
    ("500", 500, "server_error", None),
    ("502", 502, "server_error", None),
    ("503", 503, "server_error", None),
    ("504", 504, "server_error", None),
    ("overloaded", 503, "service_unavailable_error", "server_is_overloaded"),
    ("401", 401, "invalid_request_error", "invalid_api_key"),
    ("429", 429, "requests", "rate_limit_exceeded"),
])
def test_error_faults_in_openai_envelope(chaos, spec, status, etype, code):
    r = chaos.http().post("/v1/chat/completions", json=CHAT, headers=fault(spec))
    assert r.status_code == status
    body = r.json()
    validate_error(body)
    assert (body["error"]["type"], body["error"]["code"]) == (etype, code)
    if spec == "429":
        assert r.headers["retry-after"] == "1" and r.headers["retry-after-ms"] == "1000"


def test_context_length_exceeded_has_openai_shape(chaos):
    http = chaos.http()
    r = http.post("/v1/chat/completions", json=CHAT, headers=fault("context-length"))
    body = r.json()
    validate_error(body)
    assert r.status_code == 400 and body["error"]["code"] == "context_length_exceeded"
    assert body["error"]["param"] == "messages"
    window = http.get(f"/v1/models/{MODEL}").json().get("context_window", 128000)
    m = re.fullmatch(r"This model's maximum context length is (\d+) tokens\. However, your messages resulted in "
                     r"(\d+) tokens\. Please reduce the length of the messages\.", body["error"]["message"])
    assert m and int(m.group(1)) == window and int(m.group(2)) > window
    r = http.post("/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "x"},
                  headers=fault("context_length"))
    assert r.json()["error"]["param"] == "prompt" and "in the prompt" not in r.json()["error"]["message"]
    # from a scenario (answered in place of the route's own answer), with the model's window
    r = http.post("/v1/chat/completions", json=CHAT, headers={"x-case": "too-long"})
    assert r.status_code == 400 and f"context length is {window} tokens" in r.json()["error"]["message"]
    claude = http.get(f"/v1/models/{CLAUDE}").json().get("context_window", 200000)
    r = http.post("/v1/messages", headers={"x-case": "too-long"},
                  json={"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and r.json()["error"]["message"].endswith(f"> {claude} maximum")


def test_retry_after_is_configurable_and_the_sdk_raises_the_right_errors(chaos):
    client = chaos.client()
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=MODEL, messages=MSGS, extra_headers=fault("502,retry-after=3s"))
    assert e.value.status_code == 502 and e.value.response.headers["retry-after-ms"] == "3000"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MSGS, extra_headers=fault("429"))
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="text-embedding-3-small", input="x", extra_headers=fault("invalid-api-key"))


def test_anthropic_gets_its_own_envelope(chaos):
    client = anthropic.Anthropic(base_url=chaos.base_url, api_key="sk-test", max_retries=0)
    kw = {"model": CLAUDE, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.OverloadedError) as e:
        client.messages.create(**kw, extra_headers=fault("529"))
    assert e.value.status_code == 529
    assert e.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert e.value.response.headers["request-id"].startswith("req_")
    r = chaos.http().post("/v1/messages", json=kw, headers=fault("context-length"))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert re.fullmatch(r"prompt is too long: \d+ tokens > \d+ maximum", r.json()["error"]["message"])
    # mid-stream: Anthropic's error event, which the SDK raises
    got = []
    with pytest.raises(anthropic.APIError, match="Overloaded"):
        with client.messages.stream(**kw, extra_headers=fault("error-after=3")) as stream:
            for ev in stream:
                got.append(ev.type)
    assert got[:2] == ["message_start", "content_block_start"]


def test_an_invalid_header_is_a_400(chaos):
    r = chaos.http().post("/v1/chat/completions", json=CHAT, headers=fault("cut-after=soon"))
    assert r.status_code == 400
    validate_error(r.json())
    assert r.json()["error"]["param"] == "X-FakeAI-Fault" and "whole number" in r.json()["error"]["message"]
    r = chaos.http().post("/v1/messages", json={}, headers=fault("nope"))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_sdk_retries_a_429_after_retry_after_and_succeeds(chaos):
    client = chaos.client().with_options(max_retries=2)
    t0 = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MSGS, extra_headers={"x-case": "flaky", "x-fakeai-session": uuid.uuid4().hex})
    elapsed = time.monotonic() - t0
    completion = raw.parse()
    assert raw.retries_taken == 1
    assert completion.choices[0].message.content == "recovered"
    assert elapsed >= 0.3  # the SDK waited the retry-after-ms it was given
    validate("CreateChatCompletionResponse", json.loads(raw.content))


def test_timeout_holds_then_drops_the_connection(chaos):
    before = counts(chaos).get(("timeout", "/v1/chat/completions"), 0)
    t0 = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        chaos.http().post("/v1/chat/completions", json=CHAT, headers=fault("timeout=600ms"))
    assert time.monotonic() - t0 >= 0.6
    with pytest.raises(openai.APITimeoutError):  # a client whose timeout is shorter gives up first
        chaos.client(timeout=0.3).chat.completions.create(model=MODEL, messages=MSGS,
                                                          extra_headers=fault("timeout=5s"))
    assert wait_for(lambda: counts(chaos).get(("timeout", "/v1/chat/completions"), 0) == before + 2)


# -- stream faults --------------------------------------------------------------------------------

def test_cut_after_n_events_makes_the_sdk_raise(chaos):
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chaos.client().chat.completions.create(model=MODEL, messages=MSGS, stream=True, max_tokens=30,
                                                             extra_headers=fault("cut-after=5")):
            got.append(chunk)
    assert len(got) == 5
    assert got[0].choices[0].delta.role == "assistant"
    # the same on the legacy completions stream, over raw HTTP: no [DONE], an incomplete body
    lines = []
    with pytest.raises(httpx.RemoteProtocolError):
        with chaos.http().stream("POST", "/v1/completions", headers=fault("cut-after=3"),
                                 json={"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "stream": True,
                                       "max_tokens": 10}) as r:
            lines.extend(line for line in r.iter_lines() if line)
    assert len(lines) == 3 and "[DONE]" not in lines


def test_error_event_in_openai_streaming_shape(chaos):
    got = []
    with pytest.raises(openai.APIError, match="The server had an error"):
        for chunk in chaos.client().chat.completions.create(model=MODEL, messages=MSGS, stream=True,
                                                             extra_headers=fault("error-after=4")):
            got.append(chunk)
    assert len(got) == 4
    data = [d for _, d in events(chaos.http(), "/v1/chat/completions", {**CHAT, "stream": True},
                                 fault("error-after=2"))]
    assert len(data) == 3 and "[DONE]" not in data
    validate_error(json.loads(data[-1]))
    assert json.loads(data[-1])["error"]["type"] == "server_error"


def test_a_scenario_can_fail_a_stream(chaos):
    data = [d for _, d in events(chaos.http(), "/v1/chat/completions", {**CHAT, "stream": True},
                                 {"x-case": "stream-error"})]
    assert len(data) == 3 and "error" in json.loads(data[-1])


def test_malformed_chunk(chaos):
    data = [d for _, d in events(chaos.http(), "/v1/chat/completions", {**CHAT, "stream": True},
                                 fault("malformed-after=3"))]
    assert data[-1] == "[DONE]"
    for i, d in enumerate(data[:-1]):
        if i == 3:
            with pytest.raises(json.JSONDecodeError):
                json.loads(d)
        else:
            validate("CreateChatCompletionStreamResponse", json.loads(d))
    with pytest.raises(json.JSONDecodeError):  # what the SDK does with it
        list(chaos.client().chat.completions.create(model=MODEL, messages=MSGS, stream=True,
                                                    extra_headers=fault("malformed-after=1")))


def test_stall_and_drip_delay_the_events(chaos):
    http = chaos.http()
    got = events(http, "/v1/chat/completions", {**CHAT, "stream": True}, fault("stall-after=2:600ms"))
    assert got[1][0] < 0.6 <= got[2][0]  # events 1-2 at once, the third after the stall
    got = events(http, "/v1/chat/completions", {**CHAT, "stream": True}, fault("stall=400ms"))
    assert got[0][0] >= 0.4
    got = events(http, "/v1/chat/completions", {**CHAT, "stream": True}, fault("drip=40ms"))
    assert len(got) >= 4 and got[-1][0] >= 0.04 * len(got)
    gaps = sorted(b[0] - a[0] for a, b in zip(got, got[1:]))
    # one event at a time, not in a batch (the median: one late read on a loaded machine can
    # shorten a single gap, a batch would make most of them zero)
    assert gaps[len(gaps) // 2] > 0.03


def test_truncated_tool_call_arguments(chaos):
    body = {**CHAT, "max_tokens": 100, "tools": TOOLS, "tool_choice": "required", "seed": 5,
            "messages": [{"role": "user", "content": "Weather in Paris, in celsius?"}]}
    http = chaos.http()
    whole = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["tool_calls"][0]
    r = http.post("/v1/chat/completions", json=body, headers=fault("truncate-tools"))
    validate("CreateChatCompletionResponse", r.json())
    choice = r.json()["choices"][0]
    cut = choice["message"]["tool_calls"][0]["function"]["arguments"]
    assert choice["finish_reason"] == "tool_calls"
    assert whole["function"]["arguments"].startswith(cut) and len(cut) < len(whole["function"]["arguments"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)
    streamed = "".join(
        tc.function.arguments or ""
        for ch in chaos.client().chat.completions.create(**body, stream=True, extra_headers=fault("truncate-tools"))
        if ch.choices for tc in ch.choices[0].delta.tool_calls or ())
    assert streamed == cut


def test_responses_stream_error_event(chaos):
    with chaos.http().stream("POST", "/v1/responses", headers=fault("error-after=2"),
                             json={"model": MODEL, "input": "hi", "stream": True, "max_output_tokens": 20}) as r:
        text = r.read().decode()
    blocks = [b for b in text.split("\n\n") if b]
    assert len(blocks) == 3
    last = blocks[-1]
    assert last.startswith("event: error\ndata: ")
    ev = json.loads(last.split("data: ", 1)[1])
    validate("ResponseErrorEvent", ev)
    assert ev["sequence_number"] == 2


def test_injected_faults_are_counted_and_cuts_log_nothing(chaos):
    before = counts(chaos)
    http = chaos.http()
    for _ in range(3):
        http.post("/v1/embeddings", json=EMB, headers=fault("503"))
    events(http, "/v1/chat/completions", {**CHAT, "stream": True}, fault("drip=1ms,malformed-after=1"))
    after = counts(chaos)
    assert after[("503", "/v1/embeddings")] - before.get(("503", "/v1/embeddings"), 0) == 3
    for kind in ("drip", "malformed"):
        assert after[(kind, "/v1/chat/completions")] - before.get((kind, "/v1/chat/completions"), 0) == 1
    out = chaos.output()
    assert "Traceback" not in out and "Exception in ASGI" not in out


# -- settings -------------------------------------------------------------------------------------

def test_schedule_windows_via_admin(chaos):
    http = chaos.http()
    t0 = time.monotonic()
    r = http.patch("/admin/config", json={"fault_schedule": ["1s-2s 100% 503 /v1/moderations"]})
    assert r.status_code == 200, r.text
    try:
        first = http.post("/v1/moderations", json={"input": "hello"})
        if time.monotonic() - t0 < 0.9:
            assert first.status_code == 200
        assert wait_for(lambda: http.post("/v1/moderations", json={"input": "x"}).status_code == 503, 5)
        t1 = time.monotonic()
        assert wait_for(lambda: http.post("/v1/moderations", json={"input": "x"}).status_code == 200, 5)
        t2 = time.monotonic()
        assert 1.0 <= t1 - t0 and 2.0 <= t2 - t0 < 6
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200  # another endpoint: untouched
        bad = http.patch("/admin/config", json={"fault_schedule": ["soon 100% 503"]})
        assert bad.status_code == 400 and "fault schedule" in bad.json()["error"]["message"]
    finally:
        http.patch("/admin/config", json={"fault_schedule": []})


def test_per_endpoint_rates_with_a_seeded_rng_and_a_schedule_from_a_file(tmp_path):
    cfg = tmp_path / "faults.yaml"
    cfg.write_text('fault_schedule: ["0s- 100% 503 /v1/moderations", "1h- 100% 500"]\n', encoding="utf-8")
    n = 250
    with run_server("--config", str(cfg), "--ttft", "0", "--itl", "0", "--fault-rates", "30% 503 /v1/embeddings",
                    "--fault-rates", "10% 500", "--fault-seed", "11") as s:
        http = s.http()

        def run() -> tuple[list[int], list[int]]:
            models = [http.get("/v1/models").status_code for _ in range(n)]
            emb = [http.post("/v1/embeddings", json=EMB).status_code for _ in range(n)]
            return models, emb

        models, emb = run()
        tol = 5 * math.sqrt(0.3 * 0.7 / n)
        assert 503 not in models and abs(models.count(500) / n - 0.1) < tol  # not the 1h- window's 100%
        assert abs(emb.count(503) / n - 0.3) < tol and abs(emb.count(500) / n - 0.1) < tol
        assert set(models + emb) == {200, 500, 503}
        # the same seed again: the same faults on the same requests
        assert http.patch("/admin/config", json={"fault_seed": 11}).status_code == 200
        assert run() == (models, emb)
        # the file's open window: moderations fail (besides the global 10% 500)
        assert {http.post("/v1/moderations", json={"input": "x"}).status_code for _ in range(10)} <= {500, 503}


def test_fault_rate_and_types_from_env_and_the_header_switch():
    env = {"FAKEAI_FAULT_RATE": "1", "FAKEAI_FAULT_TYPES": "502", "FAKEAI_FAULT_HEADER": "false"}
    with run_server("--ttft", "0", "--itl", "0", env=env) as s:
        http = s.http()
        statuses = {http.post("/v1/chat/completions", json=CHAT, headers=fault("429")).status_code for _ in range(5)}
        assert statuses == {502}  # every request, and the header is not obeyed
        assert http.get("/health").status_code == 200  # only /v1 is faulted
        assert http.patch("/admin/config", json={"fault_rate": 0.0, "fault_header": True}).status_code == 200
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert http.post("/v1/chat/completions", json=CHAT, headers=fault("429")).status_code == 429
