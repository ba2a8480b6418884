"""Scenario matching: the conditions, first match wins, sequences per session, file parsing, reload."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeai.engine.output import Script
from fakeai.services.scenario_match import Matcher, Request, last_user, system_prompt
from fakeai.services.scenarios import POLL_S, Scenarios, parse_scenarios

CHAT = "/v1/chat/completions"


def req(body: dict, headers: dict | None = None, endpoint: str = CHAT) -> Request:
    return Request(endpoint, body, [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()])  # as ASGI


def chat(user: str, system: str | None = None, model: str = "gpt-4o-mini", **extra) -> dict:
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + [{"role": "user", "content": user}]
    return {"model": model, "messages": msgs, **extra}


def service(doc) -> Scenarios:
    s = Scenarios(SimpleNamespace(scenarios_file=None))
    s.configure({"scenarios": doc})
    return s


# -- what a request says ----------------------------------------------------------------------

def test_texts_of_every_api_shape():
    assert last_user(chat("hi there", "be brief")) == "hi there"
    assert system_prompt(chat("hi", "be brief")) == "be brief"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"},
                                                      {"type": "text", "text": "b"}]},
                          {"role": "assistant", "content": "x"}]}
    assert last_user(parts) == "a\nb"
    anthropic = {"system": [{"type": "text", "text": "sys"}], "messages": [{"role": "user", "content": "q"}]}
    assert (last_user(anthropic), system_prompt(anthropic)) == ("q", "sys")
    responses = {"instructions": "inst", "input": [{"role": "user", "content": [{"type": "input_text", "text": "r"}]}]}
    assert (last_user(responses), system_prompt(responses)) == ("r", "inst")
    assert last_user({"input": "plain"}) == "plain"
    assert last_user({"prompt": ["one", "two"]}) == "two"
    assert system_prompt({"messages": [{"role": "developer", "content": "dev"}]}) == "dev"


# -- conditions -------------------------------------------------------------------------------

def test_each_condition():
    body = chat("What's the weather in Paris?", "You are a travel agent.", temperature=0.2)
    r = req(body, {"X-Test-Case": "abc"})
    yes = [{}, {"model": "gpt-4o-mini"}, {"model": ["o3", "gpt-4o*"]}, {"user": "weather"},
           {"user_regex": r"(?i)WEATHER in (\w+)"}, {"system": "travel"}, {"system_regex": "^You are"},
           {"jmespath": "temperature < `0.5`"}, {"jmespath": "messages[?role=='system'] | length(@) == `1`"},
           {"headers": {"x-test-case": "abc"}}, {"endpoint": CHAT},
           {"model": "gpt-4o*", "user": "Paris", "headers": {"X-TEST-CASE": "abc"}}]
    no = [{"model": "gpt-4o"}, {"model": "o*"}, {"user": "Weather"}, {"user_regex": "^Paris"},
          {"system": "pirate"}, {"system_regex": "agent$x"}, {"jmespath": "temperature > `0.5`"},
          {"jmespath": "stream"}, {"headers": {"x-test-case": "abd"}}, {"headers": {"x-other": "abc"}},
          {"endpoint": "/v1/messages"}, {"user": "Paris", "headers": {"x-test-case": "nope"}}]
    for spec in yes:
        assert Matcher.build(spec).matches(r), spec
    for spec in no:
        assert not Matcher.build(spec).matches(r), spec


@pytest.mark.parametrize("spec, needle", [
    ({"colour": "red"}, "unknown match condition"),
    ({"user_regex": "("}, "regular expression"),
    ({"jmespath": "a[?"}, "JMESPath"),
    ({"headers": {"a": 1}}, "headers"),
    ({"model": []}, "model"),
    ({"user": 3}, "user"),
])
def test_bad_conditions_are_named(spec, needle):
    with pytest.raises(ValueError, match=needle):
        Matcher.build(spec)


# -- the file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("doc, needle", [
    ({"scenarios": [{"output": {"content": "x"}, "colour": 1}]}, "unknown field"),
    ({"scenarios": [{"match": {}}]}, "either output or sequence"),
    ({"scenarios": [{"output": {"content": "x"}, "sequence": [{}]}]}, "either output or sequence"),
    ({"scenarios": [{"sequence": []}]}, "non-empty"),
    ({"scenarios": [{"output": {"content": "x", "refusal": "y"}}]}, "one of content"),
    ({"scenarios": [{"output": {"text": "x"}}]}, "unknown output field"),
    ({"scenarios": [{"output": {"fault": "5033"}}]}, "fault"),
    ({"scenarios": [{"output": {"usage": {"total_tokens": 3}}}]}, "usage"),
    ({"scenarios": [{"output": {"tool_calls": [{"arguments": {}}]}}]}, "tool_calls"),
    ({"scenarios": [{"output": {"ttft_ms": -1}}]}, "ttft_ms"),
    ({"scenarios": [{"output": {}, "then": "loop"}]}, "then"),
    ({"scenarios": [{"output": {}, "match": {"user_regex": "["}}]}, r"scenarios\[0\]"),
    ({"scenarios": "x"}, "list of scenarios"),
])
def test_bad_files_are_named(doc, needle):
    with pytest.raises(ValueError, match=needle):
        parse_scenarios(doc)


def test_outputs_become_scripts():
    [sc] = parse_scenarios({"scenarios": [{"name": "n", "sequence": [
        {"tool_calls": [{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": "{broken"}]},
        {"content": "done", "reasoning": "hmm", "usage": {"prompt_tokens": 5}, "ttft_ms": 250, "itl_ms": 5},
        {"fault": "429,retry-after=1s"},
    ]}]})
    calls, done, fault = sc.steps
    assert calls.script.tool_calls == (("f", '{"a":1}'), ("g", "{broken"))
    assert done.script == Script(content="done", reasoning="hmm", ttft=0.25, itl=0.005, usage=(("prompt_tokens", 5),))
    assert fault.script is None and fault.fault.error == "429" and fault.fault.retry_after == 1.0
    assert parse_scenarios([{"output": {"content": "bare list"}}])[0].steps[0].script.content == "bare list"


# -- properties -------------------------------------------------------------------------------

WORDS = ["alpha", "beta", "gamma", "delta"]
conditions = st.one_of(
    st.builds(lambda w: {"user": w}, st.sampled_from(WORDS)),
    st.builds(lambda w: {"user_regex": f"^{w}"}, st.sampled_from(WORDS)),
    st.builds(lambda m: {"model": m}, st.sampled_from(["gpt-4o-mini", "gpt-4o*", "o3", "*"])),
    st.builds(lambda v: {"headers": {"x-case": v}}, st.sampled_from(["1", "2"])),
    st.builds(lambda n: {"jmespath": f"max_tokens > `{n}`"}, st.integers(0, 20)),
    st.just({}),
)
requests_ = st.builds(
    lambda words, model, case, mt: (chat(" ".join(words), model=model, max_tokens=mt), {"x-case": case}),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), st.sampled_from(["gpt-4o-mini", "o3", "gpt-4o"]),
    st.sampled_from(["1", "2"]), st.integers(0, 20))


@settings(max_examples=150, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=6), st.lists(requests_, min_size=1, max_size=5))
def test_first_match_wins_and_is_deterministic(matchers, reqs):
    doc = [{"name": str(i), "match": m, "output": {"content": f"#{i}"}} for i, m in enumerate(matchers)]
    a, b = service(doc), service(doc)
    for body, headers in reqs:
        fits = [i for i, m in enumerate(matchers) if Matcher.build(m).matches(req(body, headers))]
        got_a = a.match(CHAT, body, [(k.encode(), v.encode()) for k, v in headers.items()])
        got_b = b.match(CHAT, body, [(k.encode(), v.encode()) for k, v in headers.items()])
        expected = f"#{fits[0]}" if fits else None
        assert (got_a and got_a[1].script.content) == expected
        assert (got_b and got_b[1].script.content) == expected


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.sampled_from(["last", "cycle", "generate"]),
       st.lists(st.sampled_from(["s1", "s2", None]), min_size=1, max_size=20))
def test_sequences_advance_once_per_call_per_session(length, then, sessions):
    svc = service([{"sequence": [{"content": str(k)} for k in range(length)], "then": then}])
    seen: dict = {}
    for s in sessions:
        headers = [(b"x-fakeai-session", s.encode())] if s else []
        n = seen.get(s, 0)
        seen[s] = n + 1
        got = svc.match(CHAT, chat("the same conversation"), headers)
        if n < length:
            expected = str(n)
        elif then == "last":
            expected = str(length - 1)
        elif then == "cycle":
            expected = str(n % length)
        else:
            expected = None  # done: the engine answers
        assert (got and got[1].script.content) == expected


def test_without_a_header_the_conversation_is_the_session():
    svc = service([{"sequence": [{"content": "first"}, {"content": "second"}]}])
    turn1 = chat("plan my trip", "sys")
    turn2 = {**turn1, "messages": turn1["messages"] + [{"role": "assistant", "content": "first"},
                                                       {"role": "user", "content": "and then?"}]}
    other = chat("another conversation", "sys")
    assert svc.match(CHAT, turn1, [])[1].script.content == "first"
    assert svc.match(CHAT, other, [])[1].script.content == "first"
    assert svc.match(CHAT, turn2, [])[1].script.content == "second"


def test_an_exhausted_generate_scenario_lets_later_ones_match():
    svc = service([{"output": {"content": "once"}, "then": "generate"}, {"output": {"content": "fallback"}}])
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "once"
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "fallback"


# -- the file on disk ------------------------------------------------------------------------

def test_file_reloads_when_it_changes(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n  - output: {content: one}\n", encoding="utf-8")
    now = [0.0]
    svc = Scenarios(SimpleNamespace(scenarios_file=str(path)), clock=lambda: now[0])
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "one"
    path.write_text("scenarios:\n  - output: {content: two, reasoning: r}\n", encoding="utf-8")
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "one"  # not polled yet
    now[0] += POLL_S
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "two"
    path.write_text("scenarios: [ {output: ", encoding="utf-8")  # broken: the old ones stay
    os.utime(path, ns=(1, 1))
    now[0] += POLL_S
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "two"
    path.unlink()
    now[0] += POLL_S
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "two"


def test_may_stream_fault_follows_the_scenarios_and_their_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n  - sequence: [{content: one}, {fault: '503'}]\n", encoding="utf-8")
    now = [0.0]
    svc = Scenarios(SimpleNamespace(scenarios_file=str(path)), clock=lambda: now[0])
    assert not svc.may_stream_fault()  # text and errors only: no response needs watching
    path.write_text("scenarios:\n  - sequence: [{content: a}, {fault: cut-after=2}]\n", encoding="utf-8")
    now[0] += POLL_S
    assert svc.may_stream_fault()  # re-read before the gate decides, not only when matching
    svc.configure({"scenarios": [{"output": {"fault": "timeout=1s"}}]})
    assert not svc.may_stream_fault()
    svc.configure({"scenarios": [{"output": {"fault": "stall=1s"}}]})
    assert svc.may_stream_fault()


def test_admin_configuration(tmp_path):
    svc = Scenarios(SimpleNamespace(scenarios_file=None))
    assert not svc.active and svc.match(CHAT, chat("x"), []) is None
    path = tmp_path / "a.yaml"
    path.write_text("- name: a\n  output: {content: from file}\n", encoding="utf-8")
    svc.configure({"file": str(path)})
    assert svc.active and svc.path == str(path) and [s.name for s in svc.scenarios] == ["a"]
    for bad in ({"files": "x"}, {"file": 3}, {"file": str(tmp_path / "missing.yaml")},
                {"scenarios": [{"output": {"bogus": 1}}]}):
        with pytest.raises(ValueError):
            svc.configure(bad)
    assert svc.match(CHAT, chat("x"), [])[1].script.content == "from file"
    svc.configure({"file": None})
    assert not svc.active
    with pytest.raises(ValueError, match=re.escape("not valid YAML")):
        bad = tmp_path / "bad.yaml"
        bad.write_text("a: [", encoding="utf-8")
        svc.configure({"file": str(bad)})


def test_a_bad_file_at_start_up_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  - match: {user_regex: '('}\n    output: {content: x}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.yaml: scenarios\[0\]: match.user_regex is not a valid regular"):
        Scenarios(SimpleNamespace(scenarios_file=str(bad)))
