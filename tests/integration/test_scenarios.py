"""Scripted scenarios through the real server and the official SDKs."""

from __future__ import annotations

import json
import time
import uuid

import anthropic
import openai
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
WEATHER = "It is 18 °C and sunny in Paris ☀️."
SCENARIOS = f"""\
scenarios:
  - name: weather loop
    match: {{user_regex: "(?i)weather in (paris|rome)", endpoint: /v1/chat/completions}}
    sequence:
      - tool_calls: [{{name: get_weather, arguments: {{city: Paris, unit: celsius}}}}]
      - content: "{WEATHER}"
  - name: by header
    match: {{headers: {{x-case: header}}}}
    output: {{content: matched by header}}
  - name: by jmespath
    match: {{jmespath: "temperature == `0.3` && max_tokens == `77`"}}
    output: {{content: matched by jmespath, usage: {{prompt_tokens: 1234, cached_tokens: 1000}}}}
  - name: by a jmespath function that fails on most bodies
    match: {{jmespath: "length(user) > `5`"}}
    output: {{content: a long user id}}
  - name: refuse
    match: {{system: refuse everything}}
    output: {{refusal: "I can't help with that."}}
  - name: slow
    match: {{headers: {{x-case: slow}}}}
    output: {{content: one two three four five six seven eight nine ten, ttft_ms: 300, itl_ms: 20}}
  - name: flaky
    match: {{headers: {{x-case: flaky}}}}
    sequence: [{{fault: "503"}}, {{content: second time lucky}}]
  - name: claude
    match: {{endpoint: /v1/messages}}
    output: {{content: Hello from the script, reasoning: Let me think.}}
  - name: other apis
    match: {{endpoint: [/v1/responses, /v1/completions], user: scripted}}
    output: {{content: scripted answer}}
"""
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city",
                                           "parameters": {"type": "object", "properties": {
                                               "city": {"type": "string"}, "unit": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenarios") / "scenarios.yaml"
    path.write_text(SCENARIOS, encoding="utf-8")
    with run_server("--ttft", "0", "--itl", "0", "--scenarios-file", str(path)) as s:
        s.scenarios_path = str(path)
        yield s


def count(text: str) -> int:
    return get_tokenizer("o200k_base").count(text)


def test_a_scripted_tool_loop_end_to_end(scripted):
    client = scripted.client()
    messages = [{"role": "system", "content": f"conversation {uuid.uuid4()}"},
                {"role": "user", "content": "What's the weather in Paris today?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    validate("CreateChatCompletionResponse", first.model_dump(exclude_unset=True))
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert args == {"city": "Paris", "unit": "celsius"}
    assert first.usage.completion_tokens == count("get_weather") + count(call.function.arguments)
    # the agent runs the tool and sends its result back: the next step answers
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 18})}]
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == WEATHER
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == count(WEATHER)  # the real tokenizer's count
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c.model_dump(exclude_unset=True))
    # a sequence stays on its last step
    again = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert again.choices[0].message.content == WEATHER


def test_matchers_regex_jmespath_header(scripted):
    client = scripted.client()
    msgs = [{"role": "user", "content": "Hello!"}]
    assert client.chat.completions.create(model=MODEL, messages=msgs, extra_headers={"x-case": "header"}
                                          ).choices[0].message.content == "matched by header"
    r = client.chat.completions.create(model=MODEL, messages=msgs, temperature=0.3, max_tokens=77)
    assert r.choices[0].message.content == "matched by jmespath"
    assert (r.usage.prompt_tokens, r.usage.prompt_tokens_details.cached_tokens) == (1234, 1000)
    assert r.usage.total_tokens == 1234 + r.usage.completion_tokens
    for miss in ({"temperature": 0.3, "max_tokens": 78}, {"extra_headers": {"x-case": "other"}}, {},
                 {"user": "abc"}):  # (no `user`: length(null) is a JMESPath error, so no match, not a 500)
        content = client.chat.completions.create(model=MODEL, messages=msgs, **miss).choices[0].message.content
        assert content not in ("matched by header", "matched by jmespath", "a long user id")  # the engine answers
    assert client.chat.completions.create(model=MODEL, messages=msgs, user="user-123456"
                                          ).choices[0].message.content == "a long user id"
    # the regex is on the last user message, and only on chat
    tools = client.chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": "weather in rome?"}, {"role": "assistant", "content": "Which day?"},
        {"role": "user", "content": "Tomorrow, thanks"}], max_tokens=5)
    assert tools.choices[0].message.tool_calls is None


def test_refusal(scripted):
    client = scripted.client()
    msgs = [{"role": "system", "content": "You refuse everything."}, {"role": "user", "content": "Help me."}]
    r = client.chat.completions.create(model=MODEL, messages=msgs)
    validate("CreateChatCompletionResponse", r.model_dump(exclude_unset=True))
    assert (r.choices[0].message.content, r.choices[0].message.refusal) == (None, "I can't help with that.")
    streamed = "".join(c.choices[0].delta.refusal or "" for c in
                       client.chat.completions.create(model=MODEL, messages=msgs, stream=True) if c.choices)
    assert streamed == "I can't help with that."


def test_scripted_latency_paces_the_stream(scripted):
    client = scripted.client()
    t0 = time.monotonic()
    arrivals = []
    for c in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True,
                                            extra_headers={"x-case": "slow"}):
        if c.choices and c.choices[0].delta.content:
            arrivals.append(time.monotonic() - t0)
    n = count("one two three four five six seven eight nine ten")
    assert len(arrivals) == n
    assert arrivals[0] >= 0.3  # the scripted TTFT
    assert arrivals[-1] >= 0.3 + 0.02 * (n - 1)  # and one token per scripted ITL
    assert arrivals[-1] < 0.3 + 0.02 * (n - 1) + 3


def test_a_sequence_can_fail_then_succeed(scripted):
    client = scripted.client().with_options(max_retries=1)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-case": "flaky", "x-fakeai-session": uuid.uuid4().hex})
    assert raw.retries_taken == 1 and raw.parse().choices[0].message.content == "second time lucky"
    with pytest.raises(openai.InternalServerError):  # a new session starts at the failing step
        scripted.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                                  extra_headers={"x-case": "flaky", "x-fakeai-session": "new"})


def test_anthropic_responses_and_completions(scripted):
    claude = anthropic.Anthropic(base_url=scripted.base_url, api_key="sk-test", max_retries=0)
    msg = claude.messages.create(model="claude-3-7-sonnet-20250219", max_tokens=200,
                                 messages=[{"role": "user", "content": "hi"}])
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert (msg.content[0].thinking, msg.content[1].text) == ("Let me think.", "Hello from the script")
    assert msg.usage.output_tokens == count("Let me think.") + count("Hello from the script")
    client = scripted.client()
    r = client.responses.create(model=MODEL, input="a scripted question")
    assert r.output_text == "scripted answer"
    c = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="scripted prompt", max_tokens=50)
    assert c.choices[0].text == "scripted answer" and c.usage.completion_tokens == count("scripted answer")
    cut = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="scripted prompt", max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 2  # the budget still cuts


def test_hot_reload_and_admin(scripted, tmp_path):
    http = scripted.http()
    client = scripted.client()
    live = tmp_path / "live.yaml"
    live.write_text("scenarios:\n  - output: {content: version one}\n", encoding="utf-8")
    r = http.patch("/admin/config", json={"scenarios_file": str(live)})
    assert r.status_code == 200 and r.json()["settings"]["scenarios_file"] == str(live)
    try:
        def answer() -> str | None:
            return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}]
                                                  ).choices[0].message.content

        assert answer() == "version one"
        live.write_text("scenarios:\n  - output: {content: version two, reasoning: changed}\n", encoding="utf-8")
        assert wait_for(lambda: answer() == "version two", 10)
        live.write_text("scenarios: [ {output: ", encoding="utf-8")  # broken: the last good ones stay
        time.sleep(0.6)  # one poll period: the broken file has been seen
        assert answer() == "version two"
        bad = http.patch("/admin/config", json={"scenarios_file": str(tmp_path / "missing.yaml")})
        assert bad.status_code == 400 and "cannot read scenarios file" in bad.json()["error"]["message"]
        assert answer() == "version two"
    finally:
        assert http.patch("/admin/config", json={"scenarios_file": scripted.scenarios_path}).status_code == 200
