"""What a chat completion generates beyond plain text, against the real server.

Tool calling (tool_choice, parallel calls, agent loops, parameter schemas, streamed
arguments, legacy functions), structured outputs, reasoning, logprobs, multimodal
prompt tokens and predicted outputs. Requests go through the official ``openai`` SDK
or raw httpx; raw bodies are validated against the official OpenAPI spec.
"""

from __future__ import annotations

import base64
import difflib
import enum
import io
import json
import math
import statistics
import tomllib
import wave
from importlib import resources
from typing import Literal

import httpx
import jsonschema
import openai
import orjson
import pytest
from pydantic import BaseModel, Field

from fakeai.engine.tokenizer import get_tokenizer
from fakeai.registry import ModelRegistry
from tests.openapi_spec import validate, validate_error

CHAT = "/v1/chat/completions"
MODEL = "gpt-4o"  # o200k_base, vision, tools
O200K = get_tokenizer("o200k_base")
REGISTRY = ModelRegistry.load()

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
LOCAL_TIME = {
    "type": "function",
    "function": {
        "name": "get_local_time",
        "description": "Get the local time in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
STOCK = {
    "type": "function",
    "function": {
        "name": "lookup_stock_price",
        "description": "Look up the latest stock price for a ticker symbol",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string", "pattern": "^[A-Z]{1,5}$"}},
            "required": ["ticker"],
            "additionalProperties": False,
        },
    },
}
WEATHER_Q = [{"role": "user", "content": "What's the weather in Paris?"}]
JOKE_Q = [{"role": "user", "content": "Tell me a joke"}]


def tokenizer_of(model: str):
    """The model's tokenizer, as the catalog names it."""
    return get_tokenizer(REGISTRY.get(model).tokenizer)


@pytest.fixture(scope="module")
def http(server):
    with server.http() as h:
        yield h


def chat(http: httpx.Client, **body) -> dict:
    """A non-streaming chat completion as raw JSON, validated against the spec."""
    body.setdefault("model", MODEL)
    r = http.post(CHAT, json=body)
    assert r.status_code == 200, r.text[:500]
    data = r.json()
    validate("CreateChatCompletionResponse", data)
    return data


def chat_stream(http: httpx.Client, **body) -> list[dict]:
    """All chunks of a streamed chat completion (without [DONE]), each validated."""
    body.setdefault("model", MODEL)
    r = http.post(CHAT, json={**body, "stream": True})
    assert r.status_code == 200, r.text[:500]
    assert r.content.endswith(b"data: [DONE]\n\n"), r.content[-300:]
    events = r.content.split(b"\n\n")[:-1]
    assert all(e.startswith(b"data: ") for e in events)
    chunks = [orjson.loads(e[6:]) for e in events[:-1]]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    return chunks


def error(http: httpx.Client, body: dict) -> dict:
    body.setdefault("model", MODEL)
    r = http.post(CHAT, json=body)
    assert r.status_code == 400, f"{r.status_code}: {r.text[:500]}"
    data = r.json()
    validate_error(data)
    assert data["error"]["type"] == "invalid_request_error"
    return data["error"]


def calls_of(data: dict) -> list[dict]:
    return data["choices"][0]["message"].get("tool_calls") or []


def params_of(tool: dict) -> dict:
    return tool["function"]["parameters"]


# =========================================================================== tool choice
def test_tool_choice_none_never_calls(http):
    for seed in range(3):
        data = chat(http, messages=WEATHER_Q, tools=[WEATHER], tool_choice="none", max_tokens=40, seed=seed)
        ch = data["choices"][0]
        assert "tool_calls" not in ch["message"] and "function_call" not in ch["message"]
        assert isinstance(ch["message"]["content"], str) and ch["message"]["content"]
        assert ch["finish_reason"] in ("stop", "length")
        assert data["usage"]["completion_tokens"] == len(O200K.encode(ch["message"]["content"]))


def test_tool_choice_auto_calls_relevant_tool_with_conversation_values(http):
    for seed in range(5):
        data = chat(http, messages=WEATHER_Q, tools=[WEATHER], tool_choice="auto", seed=seed)
        ch = data["choices"][0]
        assert ch["finish_reason"] == "tool_calls"
        assert ch["message"]["content"] is None
        (call,) = calls_of(data)
        assert call["type"] == "function" and call["id"].startswith("call_")
        assert call["function"]["name"] == "get_weather"
        args = json.loads(call["function"]["arguments"])
        jsonschema.validate(args, params_of(WEATHER))
        assert args["city"] == "Paris"
        # the whole call (name + arguments) is what completion_tokens bills
        assert data["usage"]["completion_tokens"] == (
            len(O200K.encode("get_weather")) + len(O200K.encode(call["function"]["arguments"])))


def test_tool_choice_default_is_auto(client):
    resp = client.chat.completions.create(model=MODEL, messages=WEATHER_Q, tools=[WEATHER], seed=1)
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_tool_choice_auto_unrelated_message_answers_in_text(client):
    for seed in range(3):
        resp = client.chat.completions.create(model=MODEL, messages=JOKE_Q, tools=[WEATHER, STOCK],
                                              tool_choice="auto", max_tokens=60, seed=seed)
        ch = resp.choices[0]
        assert not ch.message.tool_calls
        assert ch.message.content and ch.finish_reason in ("stop", "length")


def test_tool_choice_required_always_calls(client):
    for messages in (WEATHER_Q, JOKE_Q):
        for seed in range(3):
            resp = client.chat.completions.create(model=MODEL, messages=messages, tools=[STOCK, WEATHER],
                                                  tool_choice="required", seed=seed)
            ch = resp.choices[0]
            assert ch.finish_reason == "tool_calls" and ch.message.tool_calls
            for call in ch.message.tool_calls:
                tool = {"lookup_stock_price": STOCK, "get_weather": WEATHER}[call.function.name]
                jsonschema.validate(json.loads(call.function.arguments), params_of(tool))
    # the relevant tool is the one called
    resp = client.chat.completions.create(model=MODEL, messages=WEATHER_Q, tools=[STOCK, WEATHER],
                                          tool_choice="required", seed=0)
    assert [c.function.name for c in resp.choices[0].message.tool_calls] == ["get_weather"]


def test_named_tool_choice_calls_exactly_that_function(client):
    # even though the user asks about the weather, the named function is the one called
    for seed in range(3):
        resp = client.chat.completions.create(
            model=MODEL, messages=WEATHER_Q, tools=[WEATHER, STOCK, LOCAL_TIME], seed=seed,
            tool_choice={"type": "function", "function": {"name": "lookup_stock_price"}})
        ch = resp.choices[0]
        assert ch.finish_reason == "tool_calls"
        assert [c.function.name for c in ch.message.tool_calls] == ["lookup_stock_price"]
        jsonschema.validate(json.loads(ch.message.tool_calls[0].function.arguments), params_of(STOCK))


def test_allowed_tools_restricts_the_callable_set(http):
    data = chat(http, messages=WEATHER_Q, tools=[WEATHER, LOCAL_TIME], seed=0, tool_choice={
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required",
                          "tools": [{"type": "function", "function": {"name": "get_local_time"}}]}})
    assert [c["function"]["name"] for c in calls_of(data)] == ["get_local_time"]


def test_city_hint_ignores_sentence_initial_verb(http):
    data = chat(http, messages=[{"role": "user", "content": "Check the weather in Paris, please."}],
                tools=[WEATHER], tool_choice="required", seed=0)
    assert json.loads(calls_of(data)[0]["function"]["arguments"])["city"] == "Paris"


def test_tool_call_cut_inside_the_function_name_is_not_a_server_error(http):
    assert len(O200K.encode("get_weather")) > 1  # the cut falls inside the name
    data = chat(http, messages=WEATHER_Q, tools=[WEATHER], tool_choice="required", max_tokens=1, seed=0)
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 1
    # no argument token was generated: the call carries its name and empty arguments
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls_of(data)] == [("get_weather", "")]


def test_tool_call_cut_by_max_tokens_reports_length(http):
    name_tokens = len(O200K.encode("get_weather"))
    full = chat(http, messages=WEATHER_Q, tools=[WEATHER], tool_choice="required", seed=4)
    full_args = calls_of(full)[0]["function"]["arguments"]
    limit = name_tokens + 3
    data = chat(http, messages=WEATHER_Q, tools=[WEATHER], tool_choice="required", seed=4, max_tokens=limit)
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == limit
    (call,) = calls_of(data)
    args = call["function"]["arguments"]
    assert full_args.startswith(args) and args != full_args
    assert len(O200K.encode(args)) == 3


# =========================================================================== parallel calls
PARALLEL_Q = [{"role": "user", "content": "What's the weather and the local time in Paris?"}]


def test_parallel_tool_calls_default_calls_every_relevant_tool(http):
    data = chat(http, messages=PARALLEL_Q, tools=[WEATHER, LOCAL_TIME, STOCK], seed=2)
    assert data["choices"][0]["finish_reason"] == "tool_calls"
    calls = calls_of(data)
    assert sorted(c["function"]["name"] for c in calls) == ["get_local_time", "get_weather"]
    assert len({c["id"] for c in calls}) == 2
    tools = {"get_weather": WEATHER, "get_local_time": LOCAL_TIME}
    for c in calls:
        args = json.loads(c["function"]["arguments"])
        jsonschema.validate(args, params_of(tools[c["function"]["name"]]))
        assert args["city"] == "Paris"
    explicit = chat(http, messages=PARALLEL_Q, tools=[WEATHER, LOCAL_TIME, STOCK], seed=2,
                    parallel_tool_calls=True)
    assert len(calls_of(explicit)) == 2


def test_parallel_tool_calls_false_calls_one(http):
    for seed in range(3):
        data = chat(http, messages=PARALLEL_Q, tools=[WEATHER, LOCAL_TIME], seed=seed, parallel_tool_calls=False)
        assert data["choices"][0]["finish_reason"] == "tool_calls"
        (call,) = calls_of(data)
        assert call["function"]["name"] in ("get_weather", "get_local_time")


# =========================================================================== agent loop
def fake_tool(name: str, args: dict) -> str:
    return json.dumps({"tool": name, "city": args.get("city"), "temperature_c": 18})


def test_agent_loop_terminates_after_the_tool_result(client):
    messages: list[dict] = list(PARALLEL_Q)
    tools = [WEATHER, LOCAL_TIME]
    ended_at = None
    calls_made = 0
    for iteration in range(1, 6):  # hard bound
        resp = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, seed=iteration)
        ch = resp.choices[0]
        if ch.finish_reason != "tool_calls":
            assert not ch.message.tool_calls
            assert isinstance(ch.message.content, str) and ch.message.content
            assert ch.finish_reason in ("stop", "length")
            ended_at = iteration
            break
        messages.append(ch.message.model_dump())
        for call in ch.message.tool_calls:
            calls_made += 1
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": fake_tool(call.function.name, json.loads(call.function.arguments))})
    assert ended_at == 2
    assert calls_made == 2
    # the history (assistant tool_calls + results) is billed in the prompt
    assert resp.usage.prompt_tokens > client.chat.completions.create(
        model=MODEL, messages=PARALLEL_Q, tools=tools, seed=1).usage.prompt_tokens


def test_auto_after_tool_result_still_calls_when_required(client):
    """The loop ends because auto answers after a result; required still forces a call."""
    first = client.chat.completions.create(model=MODEL, messages=WEATHER_Q, tools=[WEATHER], seed=3)
    msg = first.choices[0].message
    history = [*WEATHER_Q, msg.model_dump(),
               {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "18C, sunny"}]
    again = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER],
                                           tool_choice="required", seed=3)
    assert again.choices[0].finish_reason == "tool_calls"


# =========================================================================== parameter schemas
COMPLEX_STRICT = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "check_in": {"type": "string", "format": "date"},
        "guests": {"type": "integer", "minimum": 1, "maximum": 8},
        "budget": {"type": "number", "exclusiveMinimum": 0, "maximum": 5000, "multipleOf": 0.5},
        "room": {"type": "string", "enum": ["single", "double", "suite"]},
        "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "contact": {"$ref": "#/$defs/contact"},
        "stops": {"type": "array", "items": {"$ref": "#/$defs/stop"}, "minItems": 1, "maxItems": 3},
        "notes": {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]},
        "booking_id": {"type": "string", "format": "uuid"},
    },
    "required": ["city", "check_in", "guests", "budget", "room", "code", "contact", "stops", "notes",
                 "booking_id"],
    "additionalProperties": False,
    "$defs": {
        "contact": {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "phone": {"type": "string", "pattern": "^\\+[0-9]{6,12}$"},
            },
            "required": ["email", "phone"],
            "additionalProperties": False,
        },
        "stop": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 2},
                "nights": {"type": "integer", "minimum": 1, "maximum": 5},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["museum", "food", "beach"]},
                         "maxItems": 2},
            },
            "required": ["name", "nights", "tags"],
            "additionalProperties": False,
        },
    },
}
COMPLEX_LOOSE = {  # non-strict: optional properties, nested arrays, anyOf of shapes
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        "sort": {"enum": ["asc", "desc"]},
        "filters": {
            "type": "object",
            "properties": {
                "price": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "maxItems": 2},
                "brands": {"type": "array", "items": {"type": "string", "maxLength": 20}, "uniqueItems": True},
            },
            "required": ["price"],
        },
        "target": {"anyOf": [
            {"type": "object", "properties": {"sku": {"type": "string", "pattern": "^SKU[0-9]{5}$"}},
             "required": ["sku"], "additionalProperties": False},
            {"type": "integer", "minimum": 100, "maximum": 999},
        ]},
        "score": {"type": "number", "minimum": -1, "maximum": 1},
    },
    "required": ["query", "target"],
}


def _tool(name: str, params: dict, strict: bool = False) -> dict:
    fn = {"name": name, "description": f"{name} tool", "parameters": params}
    if strict:
        fn["strict"] = True
    return {"type": "function", "function": fn}


@pytest.mark.parametrize("params,strict", [(COMPLEX_STRICT, True), (COMPLEX_LOOSE, False)],
                         ids=["strict", "non-strict"])
def test_complex_parameter_schemas_validate_over_seeds(http, params, strict):
    validator = jsonschema.Draft202012Validator(params, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    tool = _tool("book_trip", params, strict)
    seen = []
    for seed in range(20):
        data = chat(http, messages=[{"role": "user", "content": "Please book a trip to Lisbon for me"}],
                    tools=[tool], tool_choice={"type": "function", "function": {"name": "book_trip"}}, seed=seed)
        assert data["choices"][0]["finish_reason"] == "tool_calls"
        args = json.loads(calls_of(data)[0]["function"]["arguments"])
        errors = list(validator.iter_errors(args))
        assert not errors, (seed, args, [e.message for e in errors])
        if strict:
            assert set(args) == set(params["properties"])  # every property, nothing else
            assert args["city"] == "Lisbon"
        seen.append(args)
    assert len({json.dumps(a, sort_keys=True) for a in seen}) > 10  # seeds give different instances


# =========================================================================== streaming tool calls
def reassemble(chunks: list[dict]) -> tuple[dict[int, dict], list[dict]]:
    """Tool calls rebuilt from deltas by index, and the choice chunks, checking delta shapes."""
    calls: dict[int, dict] = {}
    choice_chunks = [c["choices"][0] for c in chunks if c["choices"]]
    for ch in choice_chunks:
        for d in ch["delta"].get("tool_calls") or []:
            if d["index"] not in calls:  # the header: id, type, name, arguments ""
                assert set(d) == {"index", "id", "type", "function"}, d
                assert d["type"] == "function" and d["id"].startswith("call_")
                assert set(d["function"]) == {"name", "arguments"} and d["function"]["arguments"] == ""
                calls[d["index"]] = {"id": d["id"], "name": d["function"]["name"], "arguments": ""}
            else:  # fragments only
                assert set(d) == {"index", "function"}, d
                assert set(d["function"]) == {"arguments"}, d
                calls[d["index"]]["arguments"] += d["function"]["arguments"]
    return calls, choice_chunks


@pytest.mark.parametrize("messages,tools", [(WEATHER_Q, [WEATHER]), (PARALLEL_Q, [WEATHER, LOCAL_TIME])],
                         ids=["one-call", "parallel"])
def test_streamed_tool_calls_reassemble_to_the_non_streaming_calls(http, messages, tools):
    for seed in (1, 7):
        body = dict(messages=messages, tools=tools, seed=seed)
        whole = chat(http, **body)
        chunks = chat_stream(http, **body, stream_options={"include_usage": True})
        calls, choice_chunks = reassemble(chunks)
        expected = calls_of(whole)
        assert sorted(calls) == list(range(len(expected)))
        assert [(calls[i]["name"], calls[i]["arguments"]) for i in sorted(calls)] == [
            (c["function"]["name"], c["function"]["arguments"]) for c in expected]
        assert len({c["id"] for c in calls.values()}) == len(calls)
        assert choice_chunks[0]["delta"]["role"] == "assistant"
        assert choice_chunks[-1]["finish_reason"] == "tool_calls"
        assert all(ch["finish_reason"] is None for ch in choice_chunks[:-1])
        assert all("content" not in ch["delta"] or not ch["delta"]["content"] for ch in choice_chunks)
        usage = chunks[-1]["usage"]
        assert chunks[-1]["choices"] == []
        counted = sum(len(O200K.encode(c["name"])) + len(O200K.encode(c["arguments"])) for c in calls.values())
        assert usage["completion_tokens"] == counted == whole["usage"]["completion_tokens"]
        for c in calls.values():
            json.loads(c["arguments"])


def test_streamed_tool_call_through_the_sdk(client):
    stream = client.chat.completions.create(model=MODEL, messages=WEATHER_Q, tools=[WEATHER], seed=5, stream=True)
    name, args, finish = "", "", None
    for chunk in stream:
        for ch in chunk.choices:
            for d in ch.delta.tool_calls or []:
                assert d.index == 0
                name += d.function.name or ""
                args += d.function.arguments or ""
            finish = ch.finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls"
    assert json.loads(args)["city"] == "Paris"


# =========================================================================== legacy functions
def test_legacy_functions_and_function_call(http):
    fn = WEATHER["function"]
    data = chat(http, messages=WEATHER_Q, functions=[fn], function_call="auto", seed=2)
    ch = data["choices"][0]
    assert ch["finish_reason"] == "function_call"
    assert "tool_calls" not in ch["message"] and ch["message"]["content"] is None
    fc = ch["message"]["function_call"]
    assert fc["name"] == "get_weather"
    args = json.loads(fc["arguments"])
    jsonschema.validate(args, fn["parameters"])
    assert args["city"] == "Paris"
    # forced by name, even for an unrelated message; "none" never calls
    forced = chat(http, messages=JOKE_Q, functions=[fn], function_call={"name": "get_weather"}, seed=2)
    assert forced["choices"][0]["message"]["function_call"]["name"] == "get_weather"
    never = chat(http, messages=WEATHER_Q, functions=[fn], function_call="none", seed=2, max_tokens=20)
    assert "function_call" not in never["choices"][0]["message"]
    assert never["choices"][0]["finish_reason"] in ("stop", "length")
    # streamed: a function_call delta with the name, then argument fragments
    chunks = chat_stream(http, messages=WEATHER_Q, functions=[fn], function_call="auto", seed=2)
    deltas = [c["choices"][0]["delta"].get("function_call") for c in chunks]
    deltas = [d for d in deltas if d]
    assert deltas[0] == {"name": "get_weather", "arguments": ""}
    assert all(set(d) == {"arguments"} for d in deltas[1:])
    assert "".join(d["arguments"] for d in deltas) == fc["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"


def test_legacy_function_loop_ends_after_the_function_result(http):
    fn = WEATHER["function"]
    first = chat(http, messages=WEATHER_Q, functions=[fn], seed=6)
    fc = first["choices"][0]["message"]["function_call"]
    history = [*WEATHER_Q, {"role": "assistant", "content": None, "function_call": fc},
               {"role": "function", "name": fc["name"], "content": "sunny, 21C"}]
    second = chat(http, messages=history, functions=[fn], seed=6, max_tokens=40)
    ch = second["choices"][0]
    assert "function_call" not in ch["message"] and ch["message"]["content"]
    assert ch["finish_reason"] in ("stop", "length")


def test_reasoning_model_reasons_then_calls_tools(http):
    tok = tokenizer_of("o3-mini")
    body = dict(model="o3-mini", messages=WEATHER_Q, tools=[WEATHER], seed=2, reasoning_effort="low")
    whole = chat(http, **body)
    msg = whole["choices"][0]["message"]
    assert whole["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = msg["tool_calls"]
    assert json.loads(call["function"]["arguments"])["city"] == "Paris"
    reasoning_tokens = whole["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning_tokens == len(tok.encode(msg["reasoning_content"])) > 0
    assert whole["usage"]["completion_tokens"] == reasoning_tokens + len(tok.encode("get_weather")) + len(
        tok.encode(call["function"]["arguments"]))
    chunks = chat_stream(http, **body)
    calls, choice_chunks = reassemble(chunks)
    deltas = [ch["delta"] for ch in choice_chunks]
    first_call = next(i for i, d in enumerate(deltas) if d.get("tool_calls"))
    assert all(not d.get("reasoning_content") for d in deltas[first_call:])
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == msg["reasoning_content"]
    assert [(c["name"], c["arguments"]) for c in calls.values()] == [("get_weather", call["function"]["arguments"])]
    assert choice_chunks[-1]["finish_reason"] == "tool_calls"


# =========================================================================== prompt tokens
def test_tool_definitions_count_in_the_prompt(http):
    def prompt(**kw) -> int:
        return chat(http, messages=JOKE_Q, max_tokens=1, **kw)["usage"]["prompt_tokens"]

    bare = prompt()
    one = prompt(tools=[WEATHER])
    two = prompt(tools=[WEATHER, STOCK])
    legacy = prompt(functions=[WEATHER["function"]])
    # a definition costs at least the tokens of its name and description
    fn = WEATHER["function"]
    assert one - bare >= len(O200K.encode(fn["name"])) + len(O200K.encode(fn["description"]))
    assert two - one >= len(O200K.encode(STOCK["function"]["description"]))
    assert legacy > bare
    # "none" still sends the definitions to the model
    assert prompt(tools=[WEATHER], tool_choice="none") == one


# =========================================================================== 400s
def _with(**kw) -> dict:
    return {"messages": WEATHER_Q, **kw}


BAD_REQUESTS = {
    "unknown-named-function": (_with(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}}),
                               "tool_choice"),
    "tool-choice-without-tools": (_with(tool_choice="required"), "tool_choice"),
    "named-choice-without-tools": (_with(tool_choice={"type": "function", "function": {"name": "get_weather"}}),
                                   "tool_choice"),
    "n2-with-tools": (_with(tools=[WEATHER], n=2), "n"),
    "invalid-parameters-schema": (_with(tools=[_tool("f", {"type": "objectt"})]), "tools[0].function.parameters"),
    "strict-without-additionalProperties": (
        _with(tools=[WEATHER, _tool("g", {"type": "object", "properties": {"a": {"type": "string"}},
                                          "required": ["a"]}, strict=True)]),
        "tools[1].function.parameters"),
    "strict-missing-required": (
        _with(tools=[_tool("g", {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                                 "required": ["a"], "additionalProperties": False}, strict=True)]),
        "tools[0].function.parameters"),
    "duplicate-function-names": (_with(tools=[WEATHER, WEATHER]), "tools"),
    "unknown-legacy-function": (_with(functions=[WEATHER["function"]], function_call={"name": "nope"}),
                                "function_call"),
    "bad-response-format-type": (_with(response_format={"type": "xml"}), "response_format.type"),
    "json-object-without-json-word": (_with(response_format={"type": "json_object"}), "messages"),
    "strict-json-schema-without-additionalProperties": (
        _with(response_format={"type": "json_schema", "json_schema": {
            "name": "x", "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}),
        "response_format"),
    "top-logprobs-without-logprobs": (_with(top_logprobs=3), "top_logprobs"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_invalid_generation_requests_are_400(http, case):
    body, param = BAD_REQUESTS[case]
    err = error(http, dict(body))
    assert err["param"] == param, err
    assert err["message"]


def test_json_object_accepts_json_in_any_message_or_case(http):
    for messages in ([{"role": "system", "content": "Answer in JSON."}, *JOKE_Q],
                     [{"role": "user", "content": [{"type": "text", "text": "give me Json"}]}]):
        data = chat(http, messages=messages, response_format={"type": "json_object"}, seed=1)
        assert isinstance(json.loads(data["choices"][0]["message"]["content"]), dict)


# =========================================================================== structured outputs
class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str
    postcode: str = Field(pattern=r"^[0-9]{5}$")


class Pet(BaseModel):
    name: str
    species: Literal["cat", "dog", "parrot"]
    age: int = Field(ge=0, le=30)


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=120)
    favourite_color: Color
    address: Address
    pets: list[Pet]
    nickname: str | None  # Optional
    status: Literal["active", "retired"]
    scores: list[float]


def test_parse_with_pydantic_model(client):
    for seed in range(5):
        resp = client.chat.completions.parse(model=MODEL, response_format=Person, seed=seed,
                                             messages=[{"role": "user", "content": "Invent a person who lives in Rome"}])
        msg = resp.choices[0].message
        assert resp.choices[0].finish_reason == "stop"
        assert isinstance(msg.parsed, Person)
        assert isinstance(msg.parsed.address, Address) and isinstance(msg.parsed.favourite_color, Color)
        assert all(isinstance(p, Pet) for p in msg.parsed.pets)
        assert Person.model_validate_json(msg.content) == msg.parsed
        assert resp.usage.completion_tokens == len(O200K.encode(msg.content))


def test_parse_streaming_with_pydantic_model(client):
    pieces = []
    with client.chat.completions.stream(model=MODEL, response_format=Person, seed=3,
                                        messages=[{"role": "user", "content": "Invent a person"}]) as stream:
        for event in stream:
            if event.type == "content.delta":
                pieces.append(event.delta)
        final = stream.get_final_completion()
    msg = final.choices[0].message
    assert isinstance(msg.parsed, Person)
    assert "".join(pieces) == msg.content
    assert Person.model_validate(json.loads("".join(pieces))) == msg.parsed
    # same seed without streaming: the same document
    whole = client.chat.completions.parse(model=MODEL, response_format=Person, seed=3,
                                          messages=[{"role": "user", "content": "Invent a person"}])
    assert whole.choices[0].message.content == msg.content


def test_raw_streamed_json_schema_validates(http):
    schema = Person.model_json_schema()
    rf = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    chunks = chat_stream(http, messages=[{"role": "user", "content": "Invent a person"}], response_format=rf, seed=9)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    jsonschema.validate(json.loads(text), schema)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_json_object_mode(http):
    for seed in range(5):
        data = chat(http, messages=[{"role": "user", "content": "Return a JSON summary of the news"}],
                    response_format={"type": "json_object"}, seed=seed)
        content = data["choices"][0]["message"]["content"]
        assert isinstance(json.loads(content), dict) and json.loads(content)
        assert data["choices"][0]["finish_reason"] == "stop"


CONSTRAINED = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "label": {"type": "string", "enum": ["good", "bad", "ugly"]},
        "title": {"type": "string", "maxLength": 12},
        "ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 3},
        "comment": {"type": "string"},
    },
    "required": ["score", "label", "title"],
}


def test_json_schema_non_strict_constraints_over_seeds(http):
    rf = {"type": "json_schema", "json_schema": {"name": "review", "schema": CONSTRAINED}}
    docs = []
    for seed in range(20):
        data = chat(http, messages=[{"role": "user", "content": "Review the film"}], response_format=rf, seed=seed)
        doc = json.loads(data["choices"][0]["message"]["content"])
        jsonschema.validate(doc, CONSTRAINED)
        docs.append(doc)
    # non-strict: optional properties are sometimes present, sometimes not
    assert any("comment" in d for d in docs) and any("comment" not in d for d in docs)
    assert len({d["label"] for d in docs}) > 1


def test_json_schema_cut_by_max_tokens_is_invalid_json(http):
    rf = {"type": "json_schema", "json_schema": {"name": "review", "schema": CONSTRAINED}}
    data = chat(http, messages=[{"role": "user", "content": "Review the film"}], response_format=rf, seed=1,
                max_tokens=5)
    ch = data["choices"][0]
    assert ch["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 5
    full = chat(http, messages=[{"role": "user", "content": "Review the film"}], response_format=rf, seed=1)
    assert full["choices"][0]["message"]["content"].startswith(ch["message"]["content"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(ch["message"]["content"])


# =========================================================================== reasoning
REASONING_MODELS = ["o3-mini", "openai/gpt-oss-120b", "deepseek-ai/DeepSeek-R1"]
WHY = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_reasoning_content_and_token_accounting(http, client, model):
    tok = tokenizer_of(model)
    first_reasoning = None
    for seed in range(3):
        data = chat(http, model=model, messages=WHY, seed=seed, max_completion_tokens=4000)
        msg = data["choices"][0]["message"]
        reasoning, content = msg["reasoning_content"], msg["content"]
        assert isinstance(reasoning, str) and reasoning.strip()
        assert isinstance(content, str) and content.strip()
        assert reasoning != content
        details = data["usage"]["completion_tokens_details"]
        assert details["reasoning_tokens"] > 0
        assert details["reasoning_tokens"] == len(tok.encode(reasoning))
        assert data["usage"]["completion_tokens"] == details["reasoning_tokens"] + len(tok.encode(content))
        assert data["choices"][0]["finish_reason"] == "stop"
        first_reasoning = first_reasoning or reasoning
    # the SDK exposes it as an extra field; the same seed gives the same reasoning
    resp = client.chat.completions.create(model=model, messages=WHY, seed=0, max_completion_tokens=4000)
    assert resp.choices[0].message.model_extra["reasoning_content"] == first_reasoning


def _reasoning_tokens(http, model, effort, seed) -> int:
    body = dict(model=model, messages=WHY, seed=seed, max_completion_tokens=6000)
    if effort is not None:
        body["reasoning_effort"] = effort
    return chat(http, **body)["usage"]["completion_tokens_details"]["reasoning_tokens"]


def test_reasoning_effort_orders_reasoning_length(http):
    means = {e: statistics.mean(_reasoning_tokens(http, "o3-mini", e, s) for s in range(5))
             for e in ("minimal", "low", "medium", "high")}
    assert 0 < means["minimal"] < means["low"] < means["medium"] < means["high"], means
    default = statistics.mean(_reasoning_tokens(http, "o3-mini", None, s) for s in range(5))
    assert means["low"] < default < means["high"]  # the default effort is medium


def test_no_reasoning_with_effort_none_or_a_non_reasoning_model(http):
    for model, effort in (("o3-mini", "none"), ("gpt-4o", None)):
        body = dict(model=model, messages=WHY, seed=1, max_completion_tokens=80)
        if effort:
            body["reasoning_effort"] = effort
        data = chat(http, **body)
        msg = data["choices"][0]["message"]
        assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0, (model, effort)
        assert not msg.get("reasoning_content")
        assert data["usage"]["completion_tokens"] == len(tokenizer_of(model).encode(msg["content"]))


def test_reasoning_parameters_a_model_cannot_take_are_400(http):
    # as OpenAI: reasoning_effort on a model without reasoning, max_tokens on an o-series model
    r = http.post(CHAT, json=dict(model="gpt-4o", messages=WHY, reasoning_effort="high"))
    assert r.status_code == 400 and r.json()["error"]["param"] == "reasoning_effort"
    validate_error(r.json())
    r = http.post(CHAT, json=dict(model="o3-mini", messages=WHY, max_tokens=50))
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    # vLLM-served reasoning models take max_tokens
    r = http.post(CHAT, json=dict(model="openai/gpt-oss-20b", messages=WHY, max_tokens=50))
    assert r.status_code == 200


def test_claude_reasons_only_when_asked(http):
    model = "claude-3-7-sonnet-20250219"
    assert REGISTRY.get(model).capabilities.reasoning and REGISTRY.get(model).provider == "anthropic"
    plain = chat(http, model=model, messages=WHY, seed=1, max_tokens=2000)
    assert plain["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert not plain["choices"][0]["message"].get("reasoning_content")
    asked = chat(http, model=model, messages=WHY, seed=1, max_tokens=2000, reasoning_effort="low")
    assert asked["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    assert asked["choices"][0]["message"]["reasoning_content"]


def test_reasoning_consumes_a_small_budget_first(http):
    data = chat(http, model="o3-mini", messages=WHY, seed=2, max_completion_tokens=10)
    ch = data["choices"][0]
    assert ch["message"]["content"] in ("", None)
    assert ch["finish_reason"] == "length"
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 10
    assert data["usage"]["completion_tokens"] == 10
    assert len(O200K.encode(ch["message"]["reasoning_content"])) == 10


@pytest.mark.parametrize("logprobs", [
    False,
    True,
], ids=["plain", "with-logprobs"])
def test_streamed_reasoning_comes_before_content(http, logprobs):
    model = "o3-mini"
    body = dict(model=model, messages=WHY, seed=4, max_completion_tokens=4000)
    if logprobs:
        body["logprobs"] = True
    whole = chat(http, **body)
    chunks = chat_stream(http, **body, stream_options={"include_usage": True})
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    kinds = ["r" if d.get("reasoning_content") else "c" if d.get("content") else "-" for d in deltas]
    first_content = kinds.index("c")
    assert "r" not in kinds[first_content:]
    assert kinds.count("r") > 0
    reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    msg = whole["choices"][0]["message"]
    assert reasoning == msg["reasoning_content"]
    assert content == msg["content"]
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == kinds.count("r")
    assert chunks[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]


# =========================================================================== logprobs
def _check_entry(entry: dict, top_n: int) -> None:
    assert entry["logprob"] <= 0
    assert entry["bytes"] == list(entry["token"].encode())
    tops = entry["top_logprobs"]
    assert len(tops) == top_n
    values = [t["logprob"] for t in tops]
    assert values == sorted(values, reverse=True)
    assert len({t["token"] for t in tops}) == top_n
    for t in tops:
        assert t["logprob"] <= 0 and t["bytes"] == list(t["token"].encode())
        if t["token"] == entry["token"]:
            assert t["logprob"] == entry["logprob"]


def test_chat_logprobs_match_the_content(http):
    for seed in range(3):
        data = chat(http, messages=[{"role": "user", "content": "Describe a lighthouse"}], logprobs=True,
                    top_logprobs=5, max_tokens=80, seed=seed)
        ch = data["choices"][0]
        entries = ch["logprobs"]["content"]
        assert "".join(e["token"] for e in entries) == ch["message"]["content"]
        assert len(entries) == data["usage"]["completion_tokens"]
        assert any(e["token"].startswith(" ") for e in entries)  # spaces are kept in the tokens
        for e in entries:
            _check_entry(e, 5)
        # the sampled token is usually the most likely one
        assert sum(e["top_logprobs"][0]["token"] == e["token"] for e in entries) > len(entries) / 2


def test_logprobs_do_not_change_the_text(http):
    body = dict(messages=[{"role": "user", "content": "Describe a lighthouse"}], max_tokens=50, seed=11)
    plain = chat(http, **body)
    with_lp = chat(http, **body, logprobs=True, top_logprobs=2)
    assert plain["choices"][0]["logprobs"] is None
    assert with_lp["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    bare = chat(http, **body, logprobs=True)
    assert all(e["top_logprobs"] == [] for e in bare["choices"][0]["logprobs"]["content"])


def test_logprobs_stay_consistent_when_a_stop_sequence_cuts_a_token(http):
    for seed in range(10):  # find a stop sequence whose first match starts inside a token
        body = dict(messages=[{"role": "user", "content": "Describe a lighthouse"}], logprobs=True,
                    max_tokens=60, seed=seed)
        full = chat(http, **body)["choices"][0]
        tokens = [e["token"] for e in full["logprobs"]["content"]]
        text = full["message"]["content"]
        boundaries = {sum(len(t) for t in tokens[:i]) for i in range(len(tokens) + 1)}
        k = next((i for i, t in enumerate(tokens[:-1]) if i >= 3 and t.startswith(" ") and len(t) >= 6), None)
        if k is None:
            continue
        stop = tokens[k][3:] + tokens[k + 1]
        pos = text.find(stop)
        if pos > 0 and pos not in boundaries:
            break
    else:
        pytest.skip("no generated text with a long word token to cut")
    cut = chat(http, **body, stop=[stop])["choices"][0]
    assert cut["message"]["content"] == text[:pos]
    entries = cut["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == cut["message"]["content"]
    for e in entries:
        assert e["bytes"] == list(e["token"].encode()), e


def test_streamed_logprobs_carry_exactly_their_token(http):
    body = dict(messages=[{"role": "user", "content": "Describe a lighthouse"}], logprobs=True, top_logprobs=3,
                max_tokens=40, seed=8)
    whole = chat(http, **body)
    chunks = chat_stream(http, **body)
    streamed = []
    for c in chunks:
        ch = c["choices"][0]
        if ch["delta"].get("content"):
            (entry,) = ch["logprobs"]["content"]
            assert entry["token"] == ch["delta"]["content"]
            _check_entry(entry, 3)
            streamed.append(entry)
        else:
            assert ch["logprobs"] is None
    assert streamed == whole["choices"][0]["logprobs"]["content"]


def test_completions_logprobs_legacy_shape(http):
    r = http.post("/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time",
                                           "logprobs": 3, "max_tokens": 30, "seed": 2})
    assert r.status_code == 200, r.text
    data = r.json()
    validate("CreateCompletionResponse", data)
    ch = data["choices"][0]
    lp = ch["logprobs"]
    assert lp is not None
    tokens = lp["tokens"]
    assert "".join(tokens) == ch["text"]
    assert len(tokens) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"])
    assert len(tokens) == data["usage"]["completion_tokens"]
    offset = 0
    for tok, value, top, off in zip(tokens, lp["token_logprobs"], lp["top_logprobs"], lp["text_offset"]):
        assert off == offset and ch["text"][off:off + len(tok)] == tok
        offset += len(tok)
        assert value <= 0
        assert isinstance(top, dict) and len(top) == 3
        assert all(v <= 0 for v in top.values())
        if tok in top:
            assert top[tok] == value
    # with echo the prompt's tokens come first (as OpenAI's), the completion's from the prompt's end
    r = http.post("/v1/completions", json={"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time",
                                           "logprobs": 1, "max_tokens": 5, "seed": 2, "echo": True})
    data = r.json()
    lp = data["choices"][0]["logprobs"]
    assert lp["text_offset"][0] == 0 and "".join(lp["tokens"]) == data["choices"][0]["text"]
    assert lp["text_offset"][len(lp["tokens"]) - data["usage"]["completion_tokens"]] == len("Once upon a time")


# =========================================================================== multimodal
def png_uri(w: int, h: int) -> str:
    buf = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (w, h), (20, 120, 200)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def wav_b64(seconds: float, rate: int = 16000) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return base64.b64encode(buf.getvalue()).decode()


TEXT_PART = {"type": "text", "text": "What is in this picture?"}


def _prompt_tokens(http, model: str, content: list) -> int:
    return chat(http, model=model, messages=[{"role": "user", "content": content}],
                max_tokens=1)["usage"]["prompt_tokens"]


def test_image_prompt_tokens_follow_openai_tiles(http):
    uri = png_uri(1024, 1024)
    base = _prompt_tokens(http, MODEL, [TEXT_PART])
    assert base == 3 + 3 + len(O200K.encode("user")) + len(O200K.encode(TEXT_PART["text"]))
    high = _prompt_tokens(http, MODEL, [TEXT_PART, {"type": "image_url", "image_url": {"url": uri, "detail": "high"}}])
    low = _prompt_tokens(http, MODEL, [TEXT_PART, {"type": "image_url", "image_url": {"url": uri, "detail": "low"}}])
    assert high - base == 765  # 85 + 170 * 4 tiles (OpenAI's worked example)
    assert low - base == 85
    for part in ({"url": uri, "detail": "auto"}, {"url": uri}):  # auto is billed as high
        assert _prompt_tokens(http, MODEL, [TEXT_PART, {"type": "image_url", "image_url": part}]) - base == 765
    two = _prompt_tokens(http, MODEL, [TEXT_PART, {"type": "image_url", "image_url": {"url": uri, "detail": "low"}},
                                       {"type": "image_url", "image_url": {"url": uri, "detail": "high"}}])
    assert two - base == 85 + 765


def test_image_to_a_model_without_vision_is_400(http):
    body = {"model": "gpt-3.5-turbo", "messages": [
        {"role": "user", "content": [TEXT_PART, {"type": "image_url", "image_url": {"url": png_uri(64, 64)}}]}]}
    assert not REGISTRY.get("gpt-3.5-turbo").capabilities.vision
    err = error(http, body)
    assert err["param"].startswith("messages[0].content[1]")


@pytest.mark.parametrize("url,code", [
    ("data:image/png;base64,!!!not base64!!!", "invalid_value"),
    ("data:image/png;base64," + base64.b64encode(b"definitely not a png").decode(), "invalid_image_format"),
    ("not-a-url", "invalid_value"),
])
def test_garbage_image_data_uri_is_400_naming_the_part(http, url, code):
    body = {"messages": [{"role": "system", "content": "s"},
                         {"role": "user", "content": [TEXT_PART, {"type": "image_url", "image_url": {"url": url}}]}]}
    err = error(http, body)
    assert err["param"] == "messages[1].content[1].image_url.url"
    assert err["code"] == code


def test_bad_media_fields_are_400_naming_the_field(http):
    image = {"type": "image_url", "image_url": {"url": png_uri(8, 8), "detail": "medium"}}
    err = error(http, {"messages": [{"role": "user", "content": [TEXT_PART, image]}]})
    assert err["param"] == "messages[0].content[1].image_url.detail"
    audio = {"type": "input_audio", "input_audio": {"data": wav_b64(0.5), "format": "ogg"}}
    err = error(http, {"model": "gpt-4o-audio-preview", "messages": [{"role": "user", "content": [TEXT_PART, audio]}]})
    assert err["param"] == "messages[0].content[1].input_audio.format"


def test_input_audio_prompt_tokens_per_second(http):
    rules = tomllib.loads(resources.files("fakeai.engine").joinpath("data/multimodal.toml").read_text("utf-8"))
    per_second = rules["families"]["gpt-4o"]["audio"]["tokens_per_second"]
    model = "gpt-4o-audio-preview"
    assert REGISTRY.get(model).capabilities.audio
    base = _prompt_tokens(http, model, [TEXT_PART])
    for seconds in (2.0, 3.5):
        part = {"type": "input_audio", "input_audio": {"data": wav_b64(seconds), "format": "wav"}}
        assert _prompt_tokens(http, model, [TEXT_PART, part]) - base == math.ceil(seconds * per_second)
    # a model without audio input rejects it
    part = {"type": "input_audio", "input_audio": {"data": wav_b64(1.0), "format": "wav"}}
    err = error(http, {"model": "gpt-4o", "messages": [{"role": "user", "content": [TEXT_PART, part]}]})
    assert err["param"].startswith("messages[0].content[1]")
    # and audio that is not a WAV
    part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"noise" * 20).decode(), "format": "wav"}}
    err = error(http, {"model": model, "messages": [{"role": "user", "content": [TEXT_PART, part]}]})
    assert err["param"] == "messages[0].content[1].input_audio.data"


# =========================================================================== predicted outputs
PREDICTION = " ".join(
    f"Sentence {word} of the draft explains one small detail about the harbour and its stone lighthouse."
    for word in ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen"))


def test_predicted_outputs_accept_most_of_the_prediction(http):
    assert 180 <= len(PREDICTION.split()) <= 220
    pred_tokens = len(O200K.encode(PREDICTION))
    sentences = [s.strip() for s in PREDICTION.split(". ") if s.strip()]
    for seed in range(3):
        data = chat(http, messages=[{"role": "user", "content": "Fix the typos in my draft"}], seed=seed,
                    prediction={"type": "content", "content": PREDICTION})
        content = data["choices"][0]["message"]["content"]
        details = data["usage"]["completion_tokens_details"]
        assert details["accepted_prediction_tokens"] > 0
        assert details["accepted_prediction_tokens"] + details["rejected_prediction_tokens"] == pred_tokens
        assert data["usage"]["completion_tokens"] == len(O200K.encode(content))
        kept = sum(s.rstrip(".") in content for s in sentences)
        assert kept >= len(sentences) // 2, (kept, content)
        ratio = difflib.SequenceMatcher(None, PREDICTION.split(), content.split(), autojunk=False).ratio()
        assert ratio > 0.6
        assert details["accepted_prediction_tokens"] > details["rejected_prediction_tokens"]
    # content-part form of the prediction is accepted too
    data = chat(http, messages=[{"role": "user", "content": "Fix it"}], seed=1,
                prediction={"type": "content", "content": [{"type": "text", "text": PREDICTION}]})
    assert data["usage"]["completion_tokens_details"]["accepted_prediction_tokens"] > 0
    # without a prediction both are 0
    plain = chat(http, messages=[{"role": "user", "content": "Fix it"}], seed=1, max_tokens=30)
    assert plain["usage"]["completion_tokens_details"]["accepted_prediction_tokens"] == 0
    assert plain["usage"]["completion_tokens_details"]["rejected_prediction_tokens"] == 0


def test_openai_error_class_for_a_bad_tool_schema(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=WEATHER_Q, tools=[_tool("f", {"type": "objectt"})])
    assert e.value.status_code == 400 and e.value.param == "tools[0].function.parameters"
