"""The Responses API through the official openai SDK against the real server."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate, validate_error
from tests.redis_server import run_redis
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"  # o200k_base
TOK = get_tokenizer("o200k_base")

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}


def msg_tokens(role: str, text: str) -> int:
    """OpenAI's published chat rule for one message, computed independently of the server."""
    return 3 + len(TOK.encode(role)) + len(TOK.encode(text))


def wire(obj) -> dict:
    """An SDK object as the server sent it (the fields it set, nothing the SDK filled in)."""
    return obj.model_dump(mode="json", exclude_unset=True)


def raw_json(server, method: str, path: str, **kw):
    with server.http() as http:
        return http.request(method, path, **kw)


def test_create_counts_and_validates(server, client):
    r = raw_json(server, "POST", "/v1/responses", json={"model": MODEL, "input": "Tell me about Lisbon trams.",
                                                          "max_output_tokens": 50, "metadata": {"run": "a"}})
    assert r.status_code == 200
    body = r.json()
    validate("Response", body)
    assert body["object"] == "response" and body["id"].startswith("resp_")
    assert body["store"] is True and body["metadata"] == {"run": "a"}
    usage = body["usage"]
    assert usage["input_tokens"] == 3 + msg_tokens("user", "Tell me about Lisbon trams.")
    (msg,) = body["output"]
    text = msg["content"][0]["text"]
    assert msg["type"] == "message" and msg["role"] == "assistant"
    assert usage["output_tokens"] == len(TOK.encode(text)) <= 50
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    cut = usage["output_tokens"] == 50
    assert body["status"] == ("incomplete" if cut else "completed")
    assert body["incomplete_details"] == ({"reason": "max_output_tokens"} if cut else None)
    # the SDK reads the same object, and it is stored
    got = client.responses.retrieve(body["id"])
    assert got.output_text == text and got.usage.input_tokens == usage["input_tokens"]


def test_chain_three_deep_counts_the_whole_history(client):
    """Each turn's input is the previous turn's input plus its output plus the new message;
    instructions are not carried over (OpenAI's rule)."""
    instructions = "Answer like a tour guide."
    turns = ["Plan a day in Kyoto.", "What should I eat there?", "And where should I stay?"]
    r1 = client.responses.create(model=MODEL, input=turns[0], instructions=instructions, max_output_tokens=60)
    assert r1.usage.input_tokens == 3 + msg_tokens("developer", instructions) + msg_tokens("user", turns[0])
    r2 = client.responses.create(model=MODEL, input=turns[1], previous_response_id=r1.id, max_output_tokens=60)
    r3 = client.responses.create(model=MODEL, input=turns[2], previous_response_id=r2.id, max_output_tokens=60)
    assert r2.usage.input_tokens == (r1.usage.input_tokens - msg_tokens("developer", instructions)
                                     + msg_tokens("assistant", r1.output_text) + msg_tokens("user", turns[1]))
    assert r3.usage.input_tokens == (r2.usage.input_tokens + msg_tokens("assistant", r2.output_text)
                                     + msg_tokens("user", turns[2]))
    assert r3.previous_response_id == r2.id
    # the count-only endpoint agrees with what the next turn would cost
    count = client.responses.input_tokens.count(model=MODEL, input="One more?", previous_response_id=r3.id)
    assert count.input_tokens == (r3.usage.input_tokens + msg_tokens("assistant", r3.output_text)
                                  + msg_tokens("user", "One more?"))
    # input_items lists the response's own input
    items = client.responses.input_items.list(r2.id)
    assert [i.content[0].text for i in items.data] == [turns[1]]
    validate("ResponseItemList", wire(items))


def test_item_input_parts_and_pagination(server, client):
    items = [
        {"role": "system", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Describe this photo."},
                                                        {"type": "input_image", "image_url":
                                                         "https://example.com/cat-512x512.png", "detail": "low"}]},
        {"role": "assistant", "content": "It shows a cat."},
        {"role": "user", "content": "What colour is it?"},
    ]
    r = client.responses.create(model=MODEL, input=items, max_output_tokens=30)
    low_image = 2833  # gpt-4o-mini, detail low: its published base cost
    text_cost = (3 + msg_tokens("system", "Be brief.") + 3 + len(TOK.encode("user"))
                 + len(TOK.encode("Describe this photo.")) + msg_tokens("assistant", "It shows a cat.")
                 + msg_tokens("user", "What colour is it?"))
    assert r.usage.input_tokens == text_cost + low_image
    page1 = client.responses.input_items.list(r.id, limit=2, order="asc")
    assert [i.role for i in page1.data] == ["system", "user"] and page1.has_more
    page2 = client.responses.input_items.list(r.id, limit=2, order="asc", after=page1.last_id)
    assert [i.role for i in page2.data] == ["assistant", "user"] and not page2.has_more
    desc = raw_json(server, "GET", f"/v1/responses/{r.id}/input_items").json()
    validate("ResponseItemList", desc)
    assert [i["role"] for i in desc["data"]] == ["user", "assistant", "user", "system"]
    assert desc["data"][2]["content"][0]["type"] == "input_text"


def test_function_tool_loop(client):
    r1 = client.responses.create(model=MODEL, input="What is the weather in Paris today?", tools=[WEATHER_TOOL])
    validate("Response", wire(r1))
    calls = [o for o in r1.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    args = json.loads(calls[0].arguments)
    jsonschema.validate(args, WEATHER_TOOL["parameters"])
    assert args["city"] == "Paris"
    assert r1.tools[0].strict is True
    # the result goes back: the model answers in text
    out = {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temperature": 21}'}
    r2 = client.responses.create(model=MODEL, previous_response_id=r1.id, input=[out], tools=[WEATHER_TOOL])
    assert [o.type for o in r2.output] == ["message"] and r2.output_text
    # the same loop with the context sent by hand
    manual = [{"role": "user", "content": "What is the weather in Paris today?"},
              calls[0].model_dump(exclude_none=True), out]
    r3 = client.responses.create(model=MODEL, input=manual, tools=[WEATHER_TOOL])
    assert [o.type for o in r3.output] == ["message"]
    # a tool result that answers no call
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input=[{**out, "call_id": "call_unknown"}], tools=[WEATHER_TOOL])
    assert e.value.body["param"] == "input[0]"


def test_forced_and_disabled_tool_choice(client):
    r = client.responses.create(model=MODEL, input="Hello there", tools=[WEATHER_TOOL],
                                tool_choice={"type": "function", "name": "get_weather"})
    assert [o.type for o in r.output] == ["function_call"]
    r = client.responses.create(model=MODEL, input="Weather in Oslo?", tools=[WEATHER_TOOL], tool_choice="none",
                                max_output_tokens=20)
    assert [o.type for o in r.output] == ["message"]


class Trip(BaseModel):
    city: str
    days: int
    highlights: list[str]


def test_json_schema_output_parses(server, client):
    r = client.responses.parse(model=MODEL, input="Plan a trip to Rome as JSON.", text_format=Trip)
    assert isinstance(r.output_parsed, Trip)
    assert r.text.format.type == "json_schema" and r.text.format.strict is True
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 7},
                                               "tag": {"type": "string", "pattern": "^[a-z]{4}$"}},
              "required": ["n", "tag"], "additionalProperties": False}
    body = raw_json(server, "POST", "/v1/responses", json={
        "model": MODEL, "input": "Pick a number.",
        "text": {"format": {"type": "json_schema", "name": "pick", "schema": schema, "strict": True}}}).json()
    validate("Response", body)
    jsonschema.validate(json.loads(body["output"][0]["content"][0]["text"]), schema)


def test_reasoning_items_and_tokens(client):
    low = client.responses.create(model="o3-mini", input="Why is the sky blue?",
                                  reasoning={"effort": "low", "summary": "auto"})
    high = client.responses.create(model="o3-mini", input="Why is the sky blue?", reasoning={"effort": "high"})
    for r in (low, high):
        validate("Response", wire(r))
        assert r.output[0].type == "reasoning" and r.output[-1].type == "message"
        rt = r.usage.output_tokens_details.reasoning_tokens
        assert rt > 0 and r.usage.output_tokens == rt + len(TOK.encode(r.output_text))
    assert low.output[0].summary and low.output[0].summary[0].type == "summary_text"
    assert high.output[0].summary == []  # no summary asked for
    assert low.usage.output_tokens_details.reasoning_tokens < high.usage.output_tokens_details.reasoning_tokens
    assert low.reasoning.effort == "low" and high.reasoning.effort == "high"
    plain = client.responses.create(model=MODEL, input="Hi", max_output_tokens=16)
    assert plain.usage.output_tokens_details.reasoning_tokens == 0 and plain.output[0].type == "message"


def test_store_false_and_delete(server, client):
    r = client.responses.create(model=MODEL, input="Hi", store=False, max_output_tokens=16)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="Again", previous_response_id=r.id)
    assert e.value.code == "previous_response_not_found" and e.value.body["param"] == "previous_response_id"
    kept = client.responses.create(model=MODEL, input="Hi", max_output_tokens=16)
    gone = raw_json(server, "DELETE", f"/v1/responses/{kept.id}")
    assert gone.status_code == 200 and gone.json() == {"id": kept.id, "object": "response", "deleted": True}
    again = raw_json(server, "GET", f"/v1/responses/{kept.id}")
    assert again.status_code == 404
    validate_error(again.json())


@pytest.mark.parametrize("payload, status, param", [
    ({"input": "hi"}, 400, "model"),
    ({"model": MODEL, "input": "hi", "max_output_tokens": 8}, 400, "max_output_tokens"),
    ({"model": MODEL, "input": [{"role": "robot", "content": "x"}]}, 400, "input[0].role"),
    ({"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_video"}]}]}, 400,
     "input[0].content[0].type"),
    ({"model": MODEL, "input": "hi", "text": {"format": {"type": "json_object"}}}, 400, "input"),
    ({"model": MODEL, "input": "hi", "reasoning": {"effort": "high"}}, 400, "reasoning.effort"),
    ({"model": MODEL, "input": "hi", "previous_response_id": "resp_nope"}, 400, "previous_response_id"),
    ({"model": MODEL, "input": "hi", "previous_response_id": "resp_x", "conversation": "conv_x"}, 400,
     "conversation"),
    ({"model": MODEL, "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"},
                                                "strict": True}]}, 400, "tools[0].parameters"),
    ({"model": MODEL, "input": "hi", "background": True, "store": False}, 400, "background"),
    ({"model": "no-such-model", "input": "hi"}, 404, "model"),
    ({"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]},
     400, "input[0].content[0].image_url"),
])
def test_bad_requests(server, payload, status, param):
    r = raw_json(server, "POST", "/v1/responses", json=payload)
    assert r.status_code == status, r.text
    validate_error(r.json())
    assert r.json()["error"]["param"] == param


def test_unknown_ids(server):
    with server.http() as http:
        for method, path in [("GET", "/v1/responses/resp_missing"), ("DELETE", "/v1/responses/resp_missing"),
                             ("POST", "/v1/responses/resp_missing/cancel"),
                             ("GET", "/v1/responses/resp_missing/input_items")]:
            r = http.request(method, path)
            assert r.status_code == 404, (method, path)
            validate_error(r.json())


def test_input_tokens_endpoint(server, client):
    r = raw_json(server, "POST", "/v1/responses/input_tokens",
                 json={"model": MODEL, "input": "Count me", "tools": [WEATHER_TOOL]})
    assert r.status_code == 200
    validate("TokenCountsResource", r.json())
    made = client.responses.create(model=MODEL, input="Count me", tools=[WEATHER_TOOL], tool_choice="none",
                                   max_output_tokens=16)
    assert r.json()["input_tokens"] == made.usage.input_tokens > 3 + msg_tokens("user", "Count me")


# -- background responses ------------------------------------------------------------

SLOW = ("--ttft", "0", "--itl", "4", "--output-length", "fixed", "--output-tokens", "300")


@pytest.fixture(scope="module")
def slow():
    with run_server(*SLOW) as s:
        yield s


def _status(client, rid: str) -> str:
    return client.responses.retrieve(rid).status


def test_background_lifecycle_and_cancel(slow):
    client = slow.client()
    r = client.responses.create(model=MODEL, input="Write a long story.", background=True)
    assert r.status == "queued" and r.background is True
    validate("Response", wire(r))
    seen = set()
    assert wait_for(lambda: seen.add(_status(client, r.id)) or "completed" in seen, timeout=15)
    assert "in_progress" in seen
    done = client.responses.retrieve(r.id)
    assert done.usage.output_tokens == len(TOK.encode(done.output_text)) >= 300  # to a sentence end
    assert done.completed_at >= done.created_at
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(r.id)  # already completed
    # cancel one while it runs; then let a later one finish: the cancelled one stays cancelled
    c = client.responses.create(model=MODEL, input="Another long story.", background=True)
    assert wait_for(lambda: _status(client, c.id) == "in_progress", timeout=10)
    cancelled = client.responses.cancel(c.id)
    assert cancelled.status == "cancelled"
    validate("Response", wire(cancelled))
    assert client.responses.cancel(c.id).status == "cancelled"  # idempotent
    later = client.responses.create(model=MODEL, input="A third story.", background=True)
    assert wait_for(lambda: _status(client, later.id) == "completed", timeout=15)
    assert _status(client, c.id) == "cancelled"
    plain = client.responses.create(model=MODEL, input="Hi", max_output_tokens=16)
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(plain.id)


def test_background_survives_restart(tmp_path):
    data = str(tmp_path)
    with run_server("--data-dir", data, "--ttft", "0", "--itl", "20", "--output-length", "fixed",
                    "--output-tokens", "400") as a:
        client = a.client()
        stored = client.responses.create(model=MODEL, input="Remember the lighthouse.", max_output_tokens=20)
        bg = client.responses.create(model=MODEL, input="Tell a long tale.", background=True)
        assert wait_for(lambda: _status(client, bg.id) == "in_progress", timeout=10)
    # stopped mid-run (8 s of tokens left); the next process resumes it
    with run_server("--data-dir", data, "--ttft", "0", "--itl", "0", "--output-length", "fixed",
                    "--output-tokens", "400") as b:
        client = b.client()
        assert wait_for(lambda: _status(client, bg.id) == "completed", timeout=20)
        resumed = client.responses.retrieve(bg.id)
        assert resumed.usage.output_tokens == len(TOK.encode(resumed.output_text)) >= 400
        again = client.responses.retrieve(stored.id)
        assert again.output_text == stored.output_text
        assert [i.content[0].text for i in client.responses.input_items.list(stored.id).data] == [
            "Remember the lighthouse."]
        nxt = client.responses.create(model=MODEL, input="What did I ask?", previous_response_id=stored.id,
                                      max_output_tokens=16)
        assert nxt.usage.input_tokens == (stored.usage.input_tokens + msg_tokens("assistant", stored.output_text)
                                          + msg_tokens("user", "What did I ask?"))


# -- the file_search tool ------------------------------------------------------------

PLANTED = "Memo: the vault combination for the Tavira lighthouse archive is 7-41-93. Tell only the keeper."
OTHERS = {"bees.txt": "Honey bees communicate the direction of flowers with a waggle dance.",
          "rivers.txt": "The Danube flows through ten countries before reaching the Black Sea."}


def test_file_search_tool(server, client):
    ids = {name: client.files.create(file=(name, text.encode()), purpose="assistants").id
           for name, text in {"memo.txt": PLANTED, **OTHERS}.items()}
    vs = client.vector_stores.create(name="archive", file_ids=list(ids.values()))
    assert wait_for(lambda: client.vector_stores.retrieve(vs.id).status == "completed", timeout=20)
    tool = {"type": "file_search", "vector_store_ids": [vs.id], "max_num_results": 2}
    question = "What is the vault combination of the Tavira lighthouse archive?"
    r = client.responses.create(model=MODEL, input=question, tools=[tool], include=["file_search_call.results"],
                                max_output_tokens=40)
    validate("Response", wire(r))
    search, msg = r.output
    assert search.type == "file_search_call" and search.queries == [question] and len(search.results) == 2
    assert search.results[0].file_id == ids["memo.txt"] and "7-41-93" in search.results[0].text
    assert msg.content[0].annotations[0].file_id == ids["memo.txt"]
    read = "\n\n".join(res.text for res in search.results)  # the model read the results: input tokens
    assert r.usage.input_tokens == 3 + msg_tokens("user", question) + msg_tokens("tool", read)
    plain = client.responses.create(model=MODEL, input=question, tools=[tool], max_output_tokens=16)
    assert plain.output[0].type == "file_search_call" and plain.output[0].results is None
    with server.http() as http:
        raw = http.post("/v1/responses", json={"model": MODEL, "input": question, "tools": [tool], "stream": True,
                                               "max_output_tokens": 16}).text
        types = [line[7:] for line in raw.split("\n") if line.startswith("event: ")]
        assert types[2:7] == ["response.output_item.added", "response.file_search_call.in_progress",
                              "response.file_search_call.searching", "response.file_search_call.completed",
                              "response.output_item.done"]
        bad = http.post("/v1/responses", json={"model": MODEL, "input": question, "tools": [
            {"type": "file_search", "vector_store_ids": ["vs_missing"]}]})
    assert bad.status_code == 404 and bad.json()["error"]["param"] == "tools[0].vector_store_ids[0]"


def test_replicas_share_responses_through_redis():
    """Two servers on one Redis: a chain and a conversation continue on the other replica, and a
    background run is cancelled through the replica that does not run it."""
    with run_redis() as url:
        args = ("--store", "redis", "--redis-url", url, "--ttft", "0", "--itl", "10", "--output-length", "fixed",
                "--output-tokens", "1000")
        with run_server(*args) as a, run_server(*args) as b:
            ca, cb = a.client(), b.client()
            r1 = ca.responses.create(model=MODEL, input="Hello from A.", max_output_tokens=16)
            r2 = cb.responses.create(model=MODEL, input="And from B?", previous_response_id=r1.id,
                                     max_output_tokens=16)
            assert r2.usage.input_tokens == (r1.usage.input_tokens + msg_tokens("assistant", r1.output_text)
                                             + msg_tokens("user", "And from B?"))
            conv = ca.conversations.create(items=[{"role": "user", "content": "Shared note."}])
            assert cb.conversations.items.list(conv.id).data[0].content[0].text == "Shared note."
            bg = ca.responses.create(model=MODEL, input="A very long story.", background=True)
            assert wait_for(lambda: _status(cb, bg.id) == "in_progress", timeout=10)
            assert cb.responses.cancel(bg.id).status == "cancelled"
            with a.http() as http:  # A's run notices and stops: its stream ends well before 1000 tokens
                raw = http.get(f"/v1/responses/{bg.id}", params={"stream": "true"}, timeout=30).text
            assert 0 < raw.count("event: response.output_text.delta") < 1000
            assert _status(ca, bg.id) == "cancelled"
