"""Responses streaming: the typed event sequence, the SDK's stream helpers, resuming a stream."""

from __future__ import annotations

import json
import time

import jsonschema
from pydantic import BaseModel

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
TOK = get_tokenizer("o200k_base")
TOOL = {"type": "function", "name": "get_weather", "description": "Get the current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False}, "strict": True}


def events_of(raw: str) -> list[dict]:
    """SSE blocks ``event: T`` / ``data: {...}`` whose data's type is T."""
    out = []
    assert raw.endswith("\n\n")
    for block in raw[:-2].split("\n\n"):
        head, data = block.split("\n")
        assert head.startswith("event: ") and data.startswith("data: "), block
        event = json.loads(data[6:])
        assert event["type"] == head[7:]
        out.append(event)
    return out


def post_stream(server, payload: dict) -> str:
    with server.http() as http:
        r = http.post("/v1/responses", json={**payload, "stream": True})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return r.text


def check_spec(events: list[dict]) -> None:
    """Every kind of event once against the spec's ResponseStreamEvent union (they are many)."""
    seen = set()
    for e in events:
        if e["type"] not in seen:
            seen.add(e["type"])
            validate("ResponseStreamEvent", e)


def test_text_stream_order_and_sequence_numbers(server):
    events = events_of(post_stream(server, {"model": MODEL, "input": "Tell me about owls.", "max_output_tokens": 40}))
    check_spec(events)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    types = [e["type"] for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    deltas = types[4:-4]
    assert deltas and set(deltas) == {"response.output_text.delta"}
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          events[-1]["type"]]
    final = events[-1]["response"]
    assert events[-1]["type"] == ("response.completed" if final["status"] == "completed" else "response.incomplete")
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == events[-4]["text"] == final["output"][0]["content"][0]["text"]
    assert len(deltas) == final["usage"]["output_tokens"] == len(TOK.encode(text))  # one event per token
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    item_ids = {e["item_id"] for e in events if "item_id" in e}
    assert item_ids == {final["output"][0]["id"]}


def test_sdk_stream_helper(server):
    client = server.client()
    pieces = []
    with client.responses.stream(model=MODEL, input="Describe a harbour at dawn.") as s:
        for event in s:
            if event.type == "response.output_text.delta":
                pieces.append(event.delta)
        final = s.get_final_response()
    assert final.output_text == "".join(pieces) and final.id.startswith("resp_")
    assert client.responses.retrieve(final.id).output_text == final.output_text


class Recipe(BaseModel):
    name: str
    minutes: int
    steps: list[str]


def test_sdk_stream_with_text_format(server):
    client = server.client()
    with client.responses.stream(model=MODEL, input="A pancake recipe, please.", text_format=Recipe) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert isinstance(final.output_parsed, Recipe)


def test_function_call_events(server):
    events = events_of(post_stream(server, {"model": MODEL, "input": "What is the weather in Rome?",
                                            "tools": [TOOL]}))
    check_spec(events)
    types = [e["type"] for e in events]
    assert types[2] == "response.output_item.added" and events[2]["item"]["type"] == "function_call"
    assert events[2]["item"]["arguments"] == "" and events[2]["item"]["status"] == "in_progress"
    args = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert done["arguments"] == args and done["name"] == "get_weather"
    jsonschema.validate(json.loads(args), TOOL["parameters"])
    assert types[-2:] == ["response.output_item.done", "response.completed"]
    # the SDK's helper assembles the call as well
    with server.client().responses.stream(model=MODEL, input="Weather in Rome?", tools=[TOOL]) as s:
        final = s.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and json.loads(call.arguments)["city"] == "Rome"


def test_reasoning_summary_events(server):
    events = events_of(post_stream(server, {"model": "o3-mini", "input": "Why do cats purr?",
                                            "reasoning": {"effort": "low", "summary": "detailed"}}))
    check_spec(events)
    types = [e["type"] for e in events]
    assert types[2:4] == ["response.output_item.added", "response.reasoning_summary_part.added"]
    summary = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta")
    (done,) = [e for e in events if e["type"] == "response.reasoning_summary_text.done"]
    final = events[-1]["response"]
    assert summary == done["text"] == final["output"][0]["summary"][0]["text"]
    n_reasoning = types.count("response.reasoning_summary_text.delta")
    assert n_reasoning == final["usage"]["output_tokens_details"]["reasoning_tokens"]
    # the message opens only after the reasoning item is done
    assert types.index("response.content_part.added") > types.index("response.reasoning_summary_part.done")


def test_resume_with_starting_after(server):
    raw = post_stream(server, {"model": MODEL, "input": "Tell me about glaciers."})
    events = events_of(raw)
    rid = events[0]["response"]["id"]
    with server.http() as http:
        whole = http.get(f"/v1/responses/{rid}", params={"stream": "true"})
        rest = http.get(f"/v1/responses/{rid}", params={"stream": "true", "starting_after": 5})
    assert whole.text == raw  # replayed byte for byte
    assert events_of(rest.text) == events[6:]
    client = server.client()
    got = [e.sequence_number for e in client.responses.retrieve(rid, stream=True, starting_after=10)]
    assert got == list(range(11, len(events)))
    with client.responses.stream(response_id=rid) as s:  # the SDK's own resume helper
        assert s.get_final_response().output_text == events[-1]["response"]["output"][0]["content"][0]["text"]


REFUSE = """
scenarios:
  - match: {user_regex: "(?i)forbidden"}
    output: {refusal: "I can't help with that."}
"""


def test_background_stream_is_paced_and_resumable(tmp_path):
    itl_ms, n = 10, 60
    (tmp_path / "scenarios.yaml").write_text(REFUSE)
    with run_server("--ttft", "0", "--itl", str(itl_ms), "--output-length", "fixed", "--output-tokens", str(n),
                    "--scenarios-file", str(tmp_path / "scenarios.yaml")) as s, s.http() as http:
        t0 = time.monotonic()
        first = http.post("/v1/responses", json={"model": MODEL, "input": "Count the stars.", "stream": True,
                                                 "background": True})
        elapsed = time.monotonic() - t0
        events = events_of(first.text)
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert events[0]["response"]["status"] == "queued" and events[-1]["type"] == "response.completed"
        deltas = sum(e["type"] == "response.output_text.delta" for e in events)
        assert deltas >= n and elapsed >= (deltas - 1) * itl_ms / 1000  # paced by the engine
        rid = events[0]["response"]["id"]
        # a second reader joins a running one mid-way and gets exactly the rest
        second = http.post("/v1/responses", json={"model": MODEL, "input": "More stars.", "background": True})
        sid = second.json()["id"]
        assert wait_for(lambda: http.get(f"/v1/responses/{sid}").json()["status"] == "in_progress")
        joined = events_of(http.get(f"/v1/responses/{sid}", params={"stream": "true", "starting_after": 3}).text)
        replayed = events_of(http.get(f"/v1/responses/{sid}", params={"stream": "true"}).text)
        assert joined == replayed[4:] and replayed[-1]["type"] == "response.completed"
        again = events_of(http.get(f"/v1/responses/{rid}", params={"stream": "true"}).text)
        assert again == events
        # a scripted refusal streams as refusal events
        refused = events_of(http.post("/v1/responses", json={"model": MODEL, "input": "Do the forbidden thing.",
                                                             "stream": True}).text)
        check_spec(refused)
        kinds = [e["type"] for e in refused]
        assert "response.refusal.delta" in kinds and "response.output_text.delta" not in kinds
        assert "".join(e["delta"] for e in refused if e["type"] == "response.refusal.delta") == (
            refused[-1]["response"]["output"][0]["content"][0]["refusal"]) == "I can't help with that."
