"""Anthropic's Messages API through the official ``anthropic`` SDK against the real server."""

from __future__ import annotations

import base64
import io
import math
import time

import anthropic
import jsonschema
import orjson
import pytest
from anthropic.types import Message, MessageTokensCount, RawMessageStreamEvent
from PIL import Image
from pydantic import TypeAdapter

from fakeai.engine.tokenizer import get_tokenizer
from tests.server import run_server

SONNET = "claude-sonnet-4-20250514"  # reasoning (extended thinking)
HAIKU = "claude-3-5-haiku-20241022"  # no thinking
TOK = get_tokenizer("cl100k_base")  # the catalog's tokenizer for Claude models
EVENT = TypeAdapter(RawMessageStreamEvent)

WEATHER = {"name": "get_weather", "description": "Get the current weather for a city",
           "input_schema": {"type": "object", "properties": {
               "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
               "required": ["city", "unit"], "additionalProperties": False}}
EMAIL = {"name": "send_email", "description": "Send an email message",
         "input_schema": {"type": "object", "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                          "required": ["to", "body"]}}
FORECAST = {"name": "weather_forecast", "description": "Weather forecast for the next days in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
                                                              "days": {"type": "integer", "minimum": 1}},
                             "required": ["city", "days"]}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris today?"}]


@pytest.fixture(scope="module")
def server():
    # a fixed natural length (60 tokens) makes end_turn vs max_tokens deterministic
    with run_server("--ttft", "0", "--itl", "0", "--output-length", "fixed", "--output-tokens", "60") as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return anthropic.Anthropic(base_url=server.base_url, api_key="x", max_retries=0)


def count(text: str) -> int:
    return len(TOK.encode(text))


def chat_count(system: str | None, messages: list[dict]) -> int:
    """The chat counting rule (3 framing tokens + role + text per message, 3 priming), computed
    independently over the same messages (text only)."""
    n = 3
    turns = ([{"role": "system", "content": system}] if system else []) + messages
    for m in turns:
        n += 3 + count(m["role"]) + count(m["content"])
    return n


def png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def text_of(msg: Message) -> str:
    return "".join(b.text for b in msg.content if b.type == "text")


def sse_frames(raw: bytes) -> list[tuple[str, dict]]:
    """Each frame as (event name, data), checking the framing and that data.type names the event."""
    assert raw.endswith(b"\n\n")
    frames = []
    for frame in raw[:-2].split(b"\n\n"):
        head, data = frame.split(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: "), frame
        name, body = head[7:].decode(), orjson.loads(data[6:])
        assert body["type"] == name
        EVENT.validate_python(body) if name != "ping" else None
        frames.append((name, body))
    return frames


# -- non-streaming -------------------------------------------------------------------------------

def test_text_message_usage_and_headers(server, client):
    system, messages = "You are terse.", [{"role": "user", "content": "Explain how tides work."}]
    with server.http() as http:
        r = http.post("/v1/messages", json={"model": "claude-3-5-haiku-latest", "max_tokens": 200,
                                            "system": system, "messages": messages},
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    body = r.json()
    msg = Message.model_validate(body)
    assert r.headers["request-id"].startswith("req_")
    assert msg.id.startswith("msg_") and msg.role == "assistant" and msg.type == "message"
    assert msg.model == HAIKU  # the alias resolves to the dated id
    assert [b.type for b in msg.content] == ["text"]
    assert msg.usage.input_tokens == chat_count(system, messages)
    assert msg.usage.output_tokens == count(msg.content[0].text) <= 200
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0
    # the same through the SDK, system as text blocks
    sdk = client.messages.create(model=HAIKU, max_tokens=200, messages=messages,
                                 system=[{"type": "text", "text": system}])
    assert sdk.usage.input_tokens == msg.usage.input_tokens
    assert sdk.usage.output_tokens == count(text_of(sdk))


def test_max_tokens_cuts_the_text(client):
    for limit in (1, 5, 17):
        msg = client.messages.create(model=HAIKU, max_tokens=limit,
                                     messages=[{"role": "user", "content": "Write a long essay."}])
        assert msg.stop_reason == "max_tokens"
        assert msg.usage.output_tokens == limit == count(text_of(msg))


def test_stop_sequences(client):
    msg = client.messages.create(model=HAIKU, max_tokens=200, stop_sequences=["QQQ", "."],
                                 messages=[{"role": "user", "content": "Tell me a story."}])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "."
    text = text_of(msg)
    assert text and "." not in text
    # a sequence that never occurs changes nothing
    msg = client.messages.create(model=HAIKU, max_tokens=200, stop_sequences=["\x07"],
                                 messages=[{"role": "user", "content": "Tell me a story."}])
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None


def test_consecutive_turns_and_prefill_are_accepted(client):
    msg = client.messages.create(model=HAIKU, max_tokens=30, messages=[
        {"role": "user", "content": "Hi."}, {"role": "user", "content": [{"type": "text", "text": "Still there?"}]},
        {"role": "assistant", "content": "The answer is"}])
    assert msg.content and msg.usage.output_tokens > 0


# -- tools ---------------------------------------------------------------------------------------

def _tool_uses(msg: Message) -> list:
    return [b for b in msg.content if b.type == "tool_use"]


def test_tool_choice_any_calls_with_valid_input(client):
    msg = client.messages.create(model=SONNET, max_tokens=300, tools=[WEATHER, EMAIL],
                                 tool_choice={"type": "any"}, messages=ASK_WEATHER)
    Message.model_validate(msg.to_dict())
    assert msg.stop_reason == "tool_use"
    uses = _tool_uses(msg)
    assert [u.name for u in uses] == ["get_weather"] and not text_of(msg)
    call = uses[0]
    assert call.id.startswith("toolu_")
    jsonschema.validate(call.input, WEATHER["input_schema"])
    assert call.input["city"] == "Paris"  # taken from the conversation
    # usage counts the name and the JSON input tokens
    assert msg.usage.output_tokens == count(call.name) + count(orjson.dumps(call.input).decode())


def test_tool_choice_tool_auto_none_and_parallel(client):
    tools = [WEATHER, EMAIL, FORECAST]
    named = client.messages.create(model=SONNET, max_tokens=300, tools=tools,
                                   tool_choice={"type": "tool", "name": "send_email"}, messages=ASK_WEATHER)
    assert [u.name for u in _tool_uses(named)] == ["send_email"]
    jsonschema.validate(_tool_uses(named)[0].input, EMAIL["input_schema"])
    # auto: the relevant tools (two mention weather), or one with disable_parallel_tool_use
    auto = client.messages.create(model=SONNET, max_tokens=300, tools=tools, messages=ASK_WEATHER)
    assert sorted(u.name for u in _tool_uses(auto)) == ["get_weather", "weather_forecast"]
    for u in _tool_uses(auto):
        jsonschema.validate(u.input, next(t for t in tools if t["name"] == u.name)["input_schema"])
    single = client.messages.create(model=SONNET, max_tokens=300, tools=tools, messages=ASK_WEATHER,
                                    tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert len(_tool_uses(single)) == 1
    unrelated = client.messages.create(model=SONNET, max_tokens=300, tools=tools,
                                       messages=[{"role": "user", "content": "Tell me a joke."}])
    assert unrelated.stop_reason == "end_turn" and not _tool_uses(unrelated) and text_of(unrelated)
    none = client.messages.create(model=SONNET, max_tokens=300, tools=tools, tool_choice={"type": "none"},
                                  messages=ASK_WEATHER)
    assert not _tool_uses(none) and text_of(none)


def test_tool_result_turn_ends_in_text(client):
    first = client.messages.create(model=SONNET, max_tokens=300, tools=[WEATHER], messages=ASK_WEATHER)
    call = _tool_uses(first)[0]
    turn = ASK_WEATHER + [
        {"role": "assistant", "content": [b.to_dict() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": [{"type": "text", "text": "18 degrees and sunny"}]}]},
    ]
    msg = client.messages.create(model=SONNET, max_tokens=300, tools=[WEATHER], messages=turn)
    assert msg.stop_reason == "end_turn" and text_of(msg) and not _tool_uses(msg)
    # the tool turn counts more than the question alone, the same in count_tokens
    counted = client.messages.count_tokens(model=SONNET, tools=[WEATHER], messages=turn)
    assert counted.input_tokens == msg.usage.input_tokens > first.usage.input_tokens


# -- thinking ------------------------------------------------------------------------------------

def test_thinking_blocks_come_first_within_budget(client):
    for budget in (1024, 1500, 6000):
        msg = client.messages.create(model=SONNET, max_tokens=budget + 500,
                                     messages=[{"role": "user", "content": "Why is the sky blue?"}],
                                     thinking={"type": "enabled", "budget_tokens": budget})
        assert [b.type for b in msg.content] == ["thinking", "text"]
        thinking = msg.content[0]
        assert thinking.signature and thinking.thinking
        assert 0 < count(thinking.thinking) <= budget
        assert msg.usage.output_tokens == count(thinking.thinking) + count(msg.content[1].text)
    # thinking is off unless asked for
    plain = client.messages.create(model=SONNET, max_tokens=200, messages=[{"role": "user", "content": "Hi"}])
    assert [b.type for b in plain.content] == ["text"]
    omitted = client.messages.create(model=SONNET, max_tokens=3000, messages=[{"role": "user", "content": "Hi"}],
                                     thinking={"type": "enabled", "budget_tokens": 2000, "display": "omitted"})
    assert omitted.content[0].type == "thinking" and omitted.content[0].thinking == ""
    assert omitted.content[0].signature and omitted.usage.output_tokens > count(omitted.content[1].text)


def test_adaptive_thinking_and_structured_output(client):
    adaptive = client.messages.create(model=SONNET, max_tokens=4000, messages=[{"role": "user", "content": "Hi"}],
                                      thinking={"type": "adaptive"})
    assert [b.type for b in adaptive.content] == ["thinking", "text"]
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
              "required": ["name", "age"], "additionalProperties": False}
    msg = client.messages.create(model=HAIKU, max_tokens=200, messages=[{"role": "user", "content": "A person"}],
                                 output_config={"format": {"type": "json_schema", "schema": schema}})
    jsonschema.validate(orjson.loads(text_of(msg)), schema)
    assert msg.stop_reason == "end_turn"


def test_thinking_with_tools(client):
    msg = client.messages.create(model=SONNET, max_tokens=3000, tools=[WEATHER], messages=ASK_WEATHER,
                                 thinking={"type": "enabled", "budget_tokens": 1024})
    assert [b.type for b in msg.content] == ["thinking", "tool_use"] and msg.stop_reason == "tool_use"


# -- streaming -----------------------------------------------------------------------------------

def test_streaming_text_matches_non_streaming_structure(client):
    kw = {"model": HAIKU, "max_tokens": 200, "system": "Be brief.",
          "messages": [{"role": "user", "content": "Describe rain."}]}
    with client.messages.stream(**kw) as stream:
        events = list(stream)
        final = stream.get_final_message()
    names = [e.type for e in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[0].message.content == [] and events[0].message.stop_reason is None
    blocks = [e for e in events if e.type.startswith("content_block")]
    assert blocks[0].type == "content_block_start" and blocks[-1].type == "content_block_stop"
    deltas = [e for e in events if e.type == "content_block_delta"]
    text = "".join(d.delta.text for d in deltas)
    assert text == text_of(final)
    assert len(deltas) == final.usage.output_tokens == count(text)  # one delta per token
    whole = client.messages.create(**kw)
    assert final.usage.input_tokens == whole.usage.input_tokens == events[0].message.usage.input_tokens
    assert [b.type for b in final.content] == [b.type for b in whole.content] == ["text"]
    assert final.stop_reason == whole.stop_reason == "end_turn"
    with client.messages.stream(**kw) as stream:
        assert "".join(stream.text_stream) == text_of(stream.get_final_message())


def test_streaming_wire_format(server):
    with server.http() as http:
        r = http.post("/v1/messages", json={"model": HAIKU, "max_tokens": 7, "stream": True,
                                            "messages": [{"role": "user", "content": "Hello"}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["request-id"].startswith("req_")
    frames = sse_frames(r.content)
    names = [n for n, _ in frames]
    assert names == ["message_start", "ping", "content_block_start"] + ["content_block_delta"] * 7 + [
        "content_block_stop", "message_delta", "message_stop"]
    delta = frames[-2][1]
    assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 7


def test_streaming_thinking_and_tool_input(client):
    with client.messages.stream(model=SONNET, max_tokens=3000, tools=[WEATHER, FORECAST], messages=ASK_WEATHER,
                                thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [e for e in events if e.type == "content_block_start"]
    assert [s.content_block.type for s in starts] == ["thinking", "tool_use", "tool_use"]
    assert [s.index for s in starts] == [0, 1, 2]
    deltas = [e for e in events if e.type == "content_block_delta"]
    thinking = "".join(d.delta.thinking for d in deltas if d.delta.type == "thinking_delta")
    assert thinking == final.content[0].thinking and 0 < count(thinking) <= 1024
    sigs = [d for d in deltas if d.delta.type == "signature_delta"]
    assert len(sigs) == 1 and sigs[0].delta.signature == final.content[0].signature
    for s in starts[1:]:
        raw = "".join(d.delta.partial_json for d in deltas if d.index == s.index)
        value = orjson.loads(raw)  # the fragments reassemble to valid JSON
        tool = WEATHER if s.content_block.name == "get_weather" else FORECAST
        jsonschema.validate(value, tool["input_schema"])
        assert final.content[s.index].input == value
    assert final.stop_reason == "tool_use"
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert stops == [0, 1, 2]


def test_stream_stop_sequence(client):
    with client.messages.stream(model=HAIKU, max_tokens=200, stop_sequences=["."],
                                messages=[{"role": "user", "content": "Tell me a story."}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "." and "." not in text


def test_stream_is_paced_by_the_engine():
    with run_server("--ttft", "150", "--itl", "15", "--jitter", "0", "--output-length", "max") as s:
        c = anthropic.Anthropic(base_url=s.base_url, api_key="x", max_retries=0)
        with c.messages.stream(model=HAIKU, max_tokens=2, messages=[{"role": "user", "content": "warm"}]) as st:
            st.get_final_message()  # warm the streaming path too: its first use is not what we time
        t0 = time.perf_counter()
        arrivals = []
        with c.messages.stream(model=HAIKU, max_tokens=21, messages=[{"role": "user", "content": "Go"}]) as st:
            for e in st:
                if e.type == "content_block_delta":
                    arrivals.append(time.perf_counter() - t0)
        assert len(arrivals) == 21
        assert arrivals[0] >= 0.14  # the first token after the TTFT
        assert arrivals[-1] - arrivals[0] >= 20 * 0.015 * 0.9  # then one token per ITL


# -- count_tokens and media ------------------------------------------------------------------------

def test_count_tokens_equals_message_usage(client):
    kw = {"model": SONNET, "system": "You are a weather bot.", "tools": [WEATHER, EMAIL], "messages": ASK_WEATHER}
    counted = client.messages.count_tokens(**kw)
    MessageTokensCount.model_validate(counted.to_dict())
    assert counted.input_tokens == client.messages.create(max_tokens=50, **kw).usage.input_tokens
    bare = client.messages.count_tokens(model=SONNET, messages=ASK_WEATHER)
    assert bare.input_tokens == chat_count(None, ASK_WEATHER)
    with_system = client.messages.count_tokens(model=SONNET, system="You are a weather bot.", messages=ASK_WEATHER)
    assert counted.input_tokens > with_system.input_tokens > bare.input_tokens


def test_images_and_documents_raise_input_tokens(client):
    def tokens(*blocks) -> int:
        content = [*blocks, {"type": "text", "text": "What is this?"}]
        return client.messages.count_tokens(model=SONNET, messages=[{"role": "user", "content": content}]).input_tokens

    base = tokens()
    small = tokens({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(300, 200)}})
    assert small - base == math.ceil(300 * 200 / 750)  # Anthropic's published pixel rule
    large = tokens({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(3000, 2000)}})
    assert small - base < large - base <= 1600  # resized to fit: about 1.19 megapixels at most
    url = tokens({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}})
    assert url > base
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(buf, "PDF")
    pdf = tokens({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                  "data": base64.b64encode(buf.getvalue()).decode()}})
    assert pdf > base
    text_doc = tokens({"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                                       "data": "The quick brown fox."}})
    assert text_doc > base
    # an image message generates like any other, and costs the same input
    msg = client.messages.create(model=SONNET, max_tokens=20, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(300, 200)}},
        {"type": "text", "text": "What is this?"}]}])
    assert msg.usage.input_tokens == small


# -- errors ----------------------------------------------------------------------------------------

def _fails(exc: type, kind: str, call, *args, **kw) -> anthropic.APIStatusError:
    with pytest.raises(exc) as info:
        call(*args, **kw)
    e = info.value
    assert e.type == kind and e.body["type"] == "error" and e.body["error"]["type"] == kind
    assert e.request_id and e.body["request_id"] == e.request_id
    return e


def test_errors_use_anthropics_envelope(client):
    create = client.messages.create
    user = [{"role": "user", "content": "Hi"}]
    # the SDK's create() insists on max_tokens: send the body without it through its transport
    e = _fails(anthropic.BadRequestError, "invalid_request_error", client.post, "/v1/messages", cast_to=Message,
               body={"model": HAIKU, "messages": user})
    assert e.api_message == "max_tokens: Field required"
    e = _fails(anthropic.BadRequestError, "invalid_request_error", create, model=HAIKU, max_tokens=10,
               messages=[{"role": "system", "content": "Be nice."}] + user)
    assert "Unexpected role" in e.api_message
    e = _fails(anthropic.BadRequestError, "invalid_request_error", create, model=HAIKU, max_tokens=10,
               messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}])
    assert e.api_message.startswith("messages.0.content.0: unexpected `tool_use_id`")
    e = _fails(anthropic.BadRequestError, "invalid_request_error", create, model=HAIKU, max_tokens=10,
               messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": [
                   {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}, {"role": "user", "content": "b"}])
    assert "without `tool_result`" in e.api_message
    e = _fails(anthropic.BadRequestError, "invalid_request_error", create, model=HAIKU, max_tokens=10,
               messages=[{"role": "robot", "content": "x"}])
    assert e.api_message == "messages.0.role: Input should be 'user' or 'assistant'"
    for model in ("claude-unknown-9", "gpt-4o"):  # unknown, and not an Anthropic model
        e = _fails(anthropic.NotFoundError, "not_found_error", create, model=model, max_tokens=10, messages=user)
        assert e.api_message == f"model: {model}"
    _fails(anthropic.NotFoundError, "not_found_error", client.messages.count_tokens, model="nope", messages=user)


@pytest.mark.parametrize("body, message", [
    ({"max_tokens": 10, "messages": []}, "messages: at least one message is required"),
    ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
    ({"max_tokens": 10, "temperature": 1.5}, "temperature: Input should be less than or equal to 1"),
    ({"max_tokens": 10, "system": 5}, "system: Input should be a valid string"),
    ({"max_tokens": 999999}, ("max_tokens: 999999 > 8192, which is the maximum allowed number of output "
                              "tokens for claude-3-5-haiku-20241022")),
    ({"max_tokens": 10, "stop_sequences": [" "]}, "stop_sequences: each stop sequence must contain non-whitespace"),
    ({"max_tokens": 10, "thinking": {"type": "enabled", "budget_tokens": 2000}},
     "thinking: `claude-3-5-haiku-20241022` does not support thinking."),
    ({"max_tokens": 10, "tool_choice": {"type": "any"}},
     "tool_choice: tool_choice may only be specified while providing tools"),
    ({"max_tokens": 10, "tools": [{"name": "x"}]}, "tools.0.custom.input_schema: Field required"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"}}]}]}, "messages.0.content.0.image.source: "),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
     "messages.0.content.0: Input tag 'video' found using 'type' does not match any of the expected tags"),
])
def test_invalid_requests(server, body, message):
    body = {"model": HAIKU, "messages": [{"role": "user", "content": "Hi"}]} | body
    with server.http() as http:
        r = http.post("/v1/messages", json=body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["error"]["message"].startswith(message), err
    assert r.headers["request-id"] == err["request_id"]


@pytest.mark.parametrize("method, path, status, kind", [
    ("GET", "/v1/messages", 405, "invalid_request_error"), ("TRACE", "/v1/messages/count_tokens", 405,
                                                          "invalid_request_error"),
    ("POST", "/v1/messages/batches", 404, "not_found_error")])
def test_routing_errors_use_anthropics_envelope(server, method, path, status, kind):
    # found by fuzzing: a wrong method or path under /v1/messages was answered in OpenAI's envelope
    with server.http() as http:
        r = http.request(method, path, json={})
    assert r.status_code == status, r.text
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == kind and err["error"]["message"], err
    assert err["request_id"] and r.headers["request-id"] == err["request_id"]


def test_thinking_constraints(client):
    create, user = client.messages.create, [{"role": "user", "content": "Hi"}]
    e = _fails(anthropic.BadRequestError, "invalid_request_error", create, model=SONNET, max_tokens=1024,
               messages=user, thinking={"type": "enabled", "budget_tokens": 1024})
    assert "budget_tokens" in e.api_message
    e = _fails(anthropic.BadRequestError, "invalid_request_error", create, model=SONNET, max_tokens=4000,
               messages=user, thinking={"type": "enabled", "budget_tokens": 100})
    assert e.api_message == "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    _fails(anthropic.BadRequestError, "invalid_request_error", create, model=SONNET, max_tokens=4000, messages=user,
           tools=[WEATHER], tool_choice={"type": "any"}, thinking={"type": "enabled", "budget_tokens": 1024})


def test_malformed_bodies(server):
    with server.http() as http:
        for raw in (b"{not json", b"[1, 2]", b""):
            r = http.post("/v1/messages", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 400
            assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
        r = http.post("/v1/messages/count_tokens", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
