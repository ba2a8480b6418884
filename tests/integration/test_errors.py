"""Bad input always gets OpenAI's error envelope and the right 4xx, never a 500.

Every test drives the real server subprocess over loopback, with the official
``openai`` SDK (to check the exception class a client sees) and/or raw httpx
(for bodies the SDK cannot send: broken JSON, chunked uploads, wrong methods).
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from fakeai.schemas.chat import ChatCompletionRequest
from tests.openapi_spec import ERROR_KEYS, spec_available, validate_error
from tests.server import run_server

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
MODEL = "gpt-4o-mini"  # chat + completions, 128000-token window, o200k_base
INSTRUCT = "gpt-3.5-turbo-instruct"  # completions only, 4096-token window, cl100k_base
MSGS = [{"role": "user", "content": "Say hello"}]
LIMIT = 2048  # --max-request-bytes of the `limited` server

ANY = object()  # "do not check this field"


# --------------------------------------------------------------------------- helpers
def check_envelope(body: dict) -> dict:
    """OpenAI's envelope: exactly {message, type, param, code}; validated against the
    official spec when it is available (the structural checks run regardless)."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == ERROR_KEYS, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str), err
    assert err["param"] is None or isinstance(err["param"], str), err
    assert err["code"] is None or isinstance(err["code"], str), err
    if spec_available():
        validate_error(body)
    return err


def expect_error(resp: httpx.Response, status: int, *, param=ANY, code=ANY,
                 type_: str = "invalid_request_error") -> dict:
    """Assert ``resp`` is an OpenAI error of ``status``; return its ``error`` object."""
    assert resp.status_code == status, f"{resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    assert resp.headers.get("x-request-id", "").startswith("req_"), resp.headers
    err = check_envelope(resp.json())
    assert err["type"] == type_, err
    if param is not ANY:
        assert err["param"] == param, err
    if code is not ANY:
        if isinstance(code, (set, frozenset)):
            assert err["code"] in code, err
        else:
            assert err["code"] == code, err
    return err


def sdk_chat(client: openai.OpenAI, body: dict):
    """Send ``body`` verbatim through the SDK (missing model/messages are omitted)."""
    rest = {k: v for k, v in body.items() if k not in ("model", "messages")}
    return client.chat.completions.create(
        model=body.get("model", openai.omit), messages=body.get("messages", openai.omit),
        extra_body=rest or None)


def expect_sdk_error(exc_class, call, status: int, *, param=ANY, code=ANY) -> dict:
    with pytest.raises(openai.APIStatusError) as ei:
        call()
    e = ei.value
    assert type(e) is exc_class, f"{type(e).__name__} is not {exc_class.__name__}: {e}"
    assert e.status_code == status
    assert (e.request_id or "").startswith("req_")
    return expect_error(e.response, status, param=param, code=code)


@pytest.fixture(scope="module")
def http(server):
    with server.http() as h:
        yield h


@pytest.fixture(scope="module")
def limited():
    """A server with a small body limit and strict request parameters."""
    with run_server("--ttft", "0", "--itl", "0", "--max-request-bytes", str(LIMIT),
                    "--strict-params") as s:
        yield s


def chat_body(**overrides) -> dict:
    body = {"model": MODEL, "messages": MSGS, "max_tokens": 5}
    for k, v in overrides.items():
        if v is ANY:
            body.pop(k, None)
        else:
            body[k] = v
    return body


# --------------------------------------------------------------------------- broken bodies
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
@pytest.mark.parametrize("raw", [
    pytest.param(b'{"model": "gpt-4o-mini", "messages": [', id="truncated"),
    pytest.param(b"{'model': 'gpt-4o-mini'}", id="single-quotes"),
    pytest.param(b'{"model": "gpt-4o-mini",}', id="trailing-comma"),
    pytest.param(b'{"temperature": NaN}', id="nan-literal"),
    pytest.param(b'{"model": "\xff\xfe"}', id="invalid-utf8"),
    pytest.param(b"", id="empty"),
    pytest.param(b"   ", id="whitespace"),
])
def test_malformed_json_is_400(http, path, raw):
    err = expect_error(http.post(path, content=raw, headers={"content-type": "application/json"}),
                       400, param=None)
    assert "could not parse the JSON body" in err["message"]


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS])
@pytest.mark.parametrize("raw", [b"[]", b'[{"model": "gpt-4o-mini"}]', b"42", b"3.5", b"null",
                                 b'"text"', b"true"])
def test_non_object_json_body_is_400(http, path, raw):
    err = expect_error(http.post(path, content=raw, headers={"content-type": "application/json"}),
                       400, param=None)
    assert "JSON" in err["message"]


def test_deeply_nested_json_is_400_not_500(http):
    # orjson refuses nesting beyond 1024 levels: that must stay a client error.
    raw = b'{"model": "gpt-4o-mini", "messages": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    expect_error(http.post(CHAT, content=raw), 400)


# --------------------------------------------------------------------------- chat request validation
# (id, body overrides (ANY = drop the key), param, code)
_MISSING = {None, "missing_required_parameter"}
CHAT_CASES = [
    ("missing-model", dict(model=ANY), "model", "missing_required_parameter"),
    ("missing-messages", dict(messages=ANY), "messages", "missing_required_parameter"),
    ("empty-messages", dict(messages=[]), "messages", ANY),
    ("messages-not-a-list", dict(messages="hello"), "messages", "invalid_type"),
    ("message-not-an-object", dict(messages=["hello"]), "messages[0]", ANY),
    ("message-without-role", dict(messages=[{"content": "hi"}]), "messages[0].role", _MISSING),
    ("unknown-role", dict(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role", ANY),
    ("role-not-a-string", dict(messages=[{"role": 7, "content": "hi"}]), "messages[0].role", ANY),
    ("user-without-content", dict(messages=[{"role": "user"}]), "messages[0].content", _MISSING),
    ("system-without-content", dict(messages=[{"role": "system"}, *MSGS]), "messages[0].content", _MISSING),
    ("assistant-null-content-no-tools",
     dict(messages=[*MSGS, {"role": "assistant", "content": None}, *MSGS]), "messages[1].content", _MISSING),
    ("content-number", dict(messages=[{"role": "user", "content": 42}]), "messages[0].content", ANY),
    ("content-object", dict(messages=[{"role": "user", "content": {"text": "hi"}}]), "messages[0].content", ANY),
    ("content-part-not-object", dict(messages=[{"role": "user", "content": ["hi"]}]),
     "messages[0].content[0]", ANY),
    ("content-part-without-type", dict(messages=[{"role": "user", "content": [{"text": "hi"}]}]),
     "messages[0].content[0]", ANY),
    ("name-not-a-string", dict(messages=[{"role": "user", "content": "hi", "name": 5}]), "messages[0].name", ANY),
    ("tool-without-tool_call_id",
     dict(messages=[*MSGS, {"role": "tool", "content": "42"}]), "messages[1].tool_call_id", _MISSING),
    ("second-message-bad", dict(messages=[*MSGS, {"role": "user", "content": 1.5}]), "messages[1].content", ANY),
    ("model-not-a-string", dict(model=5), "model", "invalid_type"),
    # wrong types
    ("temperature-hot", dict(temperature="hot"), "temperature", "invalid_type"),
    ("n-two", dict(n="two"), "n", "invalid_type"),
    ("n-fraction", dict(n=1.5), "n", "invalid_type"),
    ("max_tokens-x", dict(max_tokens="x"), "max_tokens", "invalid_type"),
    ("stream-maybe", dict(stream="maybe"), "stream", "invalid_type"),
    ("stop-number", dict(stop=5), "stop", "invalid_type"),
    ("stop-list-of-numbers", dict(stop=[1, 2]), "stop", ANY),
    ("seed-string", dict(seed="abc"), "seed", "invalid_type"),
    ("stream_options-number", dict(stream=True, stream_options=5), "stream_options", "invalid_type"),
    # out of range
    ("temperature-3", dict(temperature=3), "temperature", "invalid_value"),
    ("temperature-negative", dict(temperature=-0.1), "temperature", "invalid_value"),
    ("top_p-1.5", dict(top_p=1.5), "top_p", "invalid_value"),
    ("n-0", dict(n=0), "n", "invalid_value"),
    ("n-129", dict(n=129), "n", "invalid_value"),
    ("max_tokens-0", dict(max_tokens=0), "max_tokens", "invalid_value"),
    ("max_tokens-negative", dict(max_tokens=-1), "max_tokens", "invalid_value"),
    ("max_completion_tokens-0", dict(max_completion_tokens=0), "max_completion_tokens", "invalid_value"),
    ("presence_penalty-5", dict(presence_penalty=5), "presence_penalty", "invalid_value"),
    ("frequency_penalty--3", dict(frequency_penalty=-3), "frequency_penalty", "invalid_value"),
    ("top_logprobs-21", dict(logprobs=True, top_logprobs=21), "top_logprobs", "invalid_value"),
    ("logit_bias-200", dict(logit_bias={"50256": 200}), "logit_bias", "invalid_value"),
    ("five-stop-sequences", dict(stop=["a", "b", "c", "d", "e"]), "stop", ANY),
    ("reasoning_effort-unknown", dict(reasoning_effort="extreme"), "reasoning_effort", "invalid_value"),
    # cross-field
    ("stream_options-without-stream", dict(stream_options={"include_usage": True}), "stream_options", ANY),
    ("stream_options-with-stream-false", dict(stream=False, stream_options={"include_usage": True}),
     "stream_options", ANY),
]


@pytest.mark.parametrize("overrides,param,code", [c[1:] for c in CHAT_CASES], ids=[c[0] for c in CHAT_CASES])
def test_invalid_chat_request_is_400(http, client, overrides, param, code):
    body = chat_body(**overrides)
    raw_err = expect_error(http.post(CHAT, json=body), 400, param=param, code=code)
    # The SDK sends the same bytes and must surface it as BadRequestError with the same fields.
    sdk_err = expect_sdk_error(openai.BadRequestError, lambda: sdk_chat(client, body), 400,
                               param=param, code=code)
    assert sdk_err == raw_err


def test_missing_parameter_messages_name_the_parameter(http):
    for body, name in ((chat_body(model=ANY), "model"), (chat_body(messages=ANY), "messages"),
                       (chat_body(messages=[{"role": "user"}]), "messages[0].content")):
        err = expect_error(http.post(CHAT, json=body), 400, param=name)
        assert f"'{name}'" in err["message"], err


def test_unknown_role_message_lists_the_supported_roles(http):
    err = expect_error(http.post(CHAT, json=chat_body(messages=[{"role": "wizard", "content": "x"}])),
                       400, param="messages[0].role")
    assert "wizard" in err["message"]
    for role in ("system", "user", "assistant", "tool"):
        assert f"'{role}'" in err["message"], err


def test_range_error_reports_the_bound_and_the_value(http):
    err = expect_error(http.post(CHAT, json=chat_body(temperature=3)), 400, param="temperature")
    assert "2" in err["message"] and "3" in err["message"], err
    err = expect_error(http.post(CHAT, json=chat_body(n=129)), 400, param="n")
    assert "128" in err["message"] and "129" in err["message"], err


def test_too_many_stop_sequences_reports_the_length_limit(http):
    err = expect_error(http.post(CHAT, json=chat_body(stop=["a", "b", "c", "d", "e"])), 400, param="stop")
    assert err["code"] != "invalid_type", err
    assert "valid string" not in err["message"], err
    assert "4" in err["message"], err


# pydantic lax mode coerces these; the OpenAI API rejects a value of the wrong JSON type
# ("Invalid type for 'stream': expected a boolean, but got a string instead.").
@pytest.mark.parametrize("field,value", [
    ("stream", "yes"), ("stream", "true"), ("stream", 1), ("temperature", "0.5"),
    ("max_tokens", "5"), ("max_tokens", True), ("n", True), ("logprobs", "true"),
])
def test_lax_coercions_are_rejected(http, field, value):
    expect_error(http.post(CHAT, json=chat_body(**{field: value})), 400, param=field, code="invalid_type")


def test_stream_options_without_stream_message(client):
    err = expect_sdk_error(openai.BadRequestError,
                           lambda: client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=3,
                                                                  stream_options={"include_usage": True}),
                           400, param="stream_options")
    assert "stream" in err["message"]


@pytest.mark.parametrize("path,body", [
    (CHAT, {"model": MODEL, "messages": MSGS, "max_tokens": 2, "stream_options": {"include_usage": True}}),
    (COMPLETIONS, {"model": INSTRUCT, "prompt": "hi", "max_tokens": 2, "stream_options": {"include_usage": True}}),
])
def test_stream_options_without_stream_both_endpoints(http, path, body):
    expect_error(http.post(path, json=body), 400, param="stream_options")


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("model", ["gpt-nonexistent", "GPT-4O-MINI-NOPE", "org/unknown-model"])
def test_unknown_model_is_404_model_not_found(client, model):
    err = expect_sdk_error(openai.NotFoundError,
                           lambda: client.chat.completions.create(model=model, messages=MSGS, max_tokens=2),
                           404, param="model", code="model_not_found")
    assert model in err["message"]


def test_unknown_model_on_completions_is_404(client):
    expect_sdk_error(openai.NotFoundError,
                     lambda: client.completions.create(model="davinci-nope", prompt="hi", max_tokens=2),
                     404, param="model", code="model_not_found")


def test_unknown_model_while_streaming_is_404_before_the_stream(client):
    expect_sdk_error(openai.NotFoundError,
                     lambda: client.chat.completions.create(model="gpt-nope", messages=MSGS, stream=True),
                     404, param="model", code="model_not_found")


def test_model_without_chat_capability_is_400(client):
    expect_sdk_error(openai.BadRequestError,
                     lambda: client.chat.completions.create(model=INSTRUCT, messages=MSGS, max_tokens=2),
                     400, param="model", code=ANY)


# --------------------------------------------------------------------------- context window
def test_max_tokens_beyond_context_window_chat(client):
    err = expect_sdk_error(openai.BadRequestError,
                           lambda: client.chat.completions.create(model=MODEL, messages=MSGS,
                                                                  max_tokens=128_000),
                           400, param="messages", code="context_length_exceeded")
    assert "128000" in err["message"], err


def test_max_completion_tokens_beyond_context_window_chat(http):
    expect_error(http.post(CHAT, json=chat_body(max_tokens=ANY, max_completion_tokens=200_000)),
                 400, param="messages", code="context_length_exceeded")


def test_exactly_filling_the_context_window_is_allowed(http):
    # prompt + max_tokens == window is the largest accepted request (the limit is inclusive).
    tok = get_tokenizer("cl100k_base")
    prompt = "Tell me about the sea."
    n = len(tok.encode(prompt))
    r = http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": prompt, "max_tokens": 4096 - n})
    assert r.status_code == 200, r.text
    expect_error(http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": prompt, "max_tokens": 4097 - n}),
                 400, code="context_length_exceeded")


def test_max_tokens_plus_prompt_beyond_window_completions(client):
    tok = get_tokenizer("cl100k_base")
    prompt = "word " * 3000
    n = len(tok.encode(prompt))
    assert n < 4096 < n + 2000
    err = expect_sdk_error(openai.BadRequestError,
                           lambda: client.completions.create(model=INSTRUCT, prompt=prompt, max_tokens=2000),
                           400, param="prompt", code="context_length_exceeded")
    assert "4096" in err["message"] and str(n) in err["message"], err


def test_prompt_alone_beyond_window_completions(http):
    # gpt-3.5-turbo-instruct: 4096-token window; no max_tokens, so only the prompt counts.
    tok = get_tokenizer("cl100k_base")
    prompt = "hello " * 5000
    n = len(tok.encode(prompt))
    assert n > 4096
    err = expect_error(http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": prompt, "max_tokens": None}),
                       400, param="prompt", code="context_length_exceeded")
    assert "4096" in err["message"] and str(n) in err["message"], err


def test_prompt_alone_beyond_window_chat(client):
    # 128000-token window: a ~130k-token message with no max_tokens.
    content = "hello" + " hello" * 130_000
    assert len(get_tokenizer("o200k_base").encode(content)) > 128_000
    expect_sdk_error(openai.BadRequestError,
                     lambda: client.chat.completions.create(model=MODEL,
                                                            messages=[{"role": "user", "content": content}]),
                     400, param="messages", code="context_length_exceeded")


def test_context_length_checked_before_streaming(client):
    expect_sdk_error(openai.BadRequestError,
                     lambda: client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=500_000,
                                                            stream=True),
                     400, param="messages", code="context_length_exceeded")


# --------------------------------------------------------------------------- body size limit
def _padded_chat_body(size: int) -> bytes:
    """A valid chat body of exactly ``size`` bytes."""
    base = json.dumps({"model": MODEL, "max_tokens": 2,
                       "messages": [{"role": "user", "content": ""}]}, separators=(",", ":")).encode()
    pad = size - len(base)
    assert pad >= 0
    out = json.dumps({"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "x" * pad}]},
                     separators=(",", ":")).encode()
    assert len(out) == size
    return out


def _chunks(data: bytes, size: int = 300):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_oversized_body_with_content_length_is_413(limited):
    body = _padded_chat_body(LIMIT * 4)
    r = httpx.post(limited.base_url + CHAT, content=body, headers={"content-type": "application/json"})
    assert r.request.headers["content-length"] == str(len(body))
    err = expect_error(r, 413, param=None)
    assert str(LIMIT) in err["message"]


def test_oversized_body_chunked_is_413_not_500(limited):
    body = _padded_chat_body(LIMIT * 4)
    r = httpx.post(limited.base_url + CHAT, content=_chunks(body), headers={"content-type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    err = expect_error(r, 413, param=None)
    assert str(LIMIT) in err["message"]


def test_oversized_body_chunked_on_completions_is_413(limited):
    body = json.dumps({"model": INSTRUCT, "prompt": "y" * (LIMIT * 2)}).encode()
    expect_error(httpx.post(limited.base_url + COMPLETIONS, content=_chunks(body)), 413)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_size_limit_boundary(limited, chunked):
    at_limit, over = _padded_chat_body(LIMIT), _padded_chat_body(LIMIT + 1)
    send = (lambda b: httpx.post(limited.base_url + CHAT, content=_chunks(b) if chunked else b))
    r = send(at_limit)
    assert r.status_code == 200, r.text
    expect_error(send(over), 413)


def test_oversized_body_via_sdk(limited):
    client = limited.client()
    expect_sdk_error(openai.APIStatusError,
                     lambda: client.chat.completions.create(
                         model=MODEL, messages=[{"role": "user", "content": "z" * (LIMIT * 2)}]),
                     413, param=None)


def test_server_still_serves_after_413(limited):
    for _ in range(3):
        expect_error(httpx.post(limited.base_url + CHAT, content=_padded_chat_body(LIMIT * 3)), 413)
    r = httpx.post(limited.base_url + CHAT, json=chat_body(max_tokens=2))
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- routes and methods
@pytest.mark.parametrize("method,path", [("POST", "/v1/nope"), ("GET", "/v1/chat/complete"),
                                         ("POST", "/v2/chat/completions"), ("GET", "/")])
def test_unknown_route_is_404_envelope(http, method, path):
    err = expect_error(http.request(method, path), 404, param=None, code=None)
    assert path in err["message"]


@pytest.mark.parametrize("method,path", [("PATCH", CHAT), ("PUT", CHAT), ("DELETE", COMPLETIONS),
                                         ("GET", COMPLETIONS)])
def test_wrong_method_is_405_envelope(http, method, path):
    r = http.request(method, path)
    err = expect_error(r, 405, param=None)
    assert method in err["message"]
    assert "POST" in r.headers.get("allow", ""), r.headers


def test_wrong_method_via_sdk_is_api_status_error(client):
    with pytest.raises(openai.APIStatusError) as ei:
        client.get("/completions", cast_to=object)
    assert type(ei.value) is openai.APIStatusError and ei.value.status_code == 405
    expect_error(ei.value.response, 405)


# --------------------------------------------------------------------------- unknown fields
def test_unknown_fields_are_ignored_by_default(client):
    r = client.chat.completions.with_raw_response.create(model=MODEL, messages=MSGS, max_tokens=2,
                                                         extra_body={"foo": 1, "bar": {"x": [1]}})
    assert r.status_code == 200
    assert r.parse().choices[0].message.content


def test_unknown_fields_ignored_on_completions_by_default(http):
    r = http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": "hi", "max_tokens": 2, "foo": True})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path,body", [
    (CHAT, {"model": MODEL, "messages": MSGS, "max_tokens": 2, "foo": 1}),
    (COMPLETIONS, {"model": INSTRUCT, "prompt": "hi", "max_tokens": 2, "foo": 1}),
])
def test_strict_params_rejects_unknown_field(limited, path, body):
    err = expect_error(httpx.post(limited.base_url + path, json=body), 400, param="foo")
    assert err["message"] == "Unrecognized request argument supplied: foo"


def test_strict_params_via_sdk(limited):
    client = limited.client()
    err = expect_sdk_error(openai.BadRequestError,
                           lambda: client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=2,
                                                                  extra_body={"foo": "bar"}),
                           400, param="foo")
    assert err["message"] == "Unrecognized request argument supplied: foo"


def test_strict_params_accepts_every_known_field(limited):
    # Documented fields and the vLLM/NIM extensions are not "unrecognized".
    body = {"model": MODEL, "messages": MSGS, "max_tokens": 2, "temperature": 0.5, "top_p": 0.9, "n": 1,
            "seed": 1, "stop": ["\n\n"], "user": "u", "presence_penalty": 0, "frequency_penalty": 0,
            "logit_bias": {}, "store": False, "metadata": {"a": "b"}, "ignore_eos": False, "min_tokens": 0,
            "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1}
    r = httpx.post(limited.base_url + CHAT, json=body)
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- fuzz: wrong types everywhere
# One or more wrong-typed values for every top-level field of the chat request. Values are
# chosen so that no lax coercion can make them valid (no numeric strings, no "yes"/"no").
FUZZ = {
    "model": [5, ["gpt-4o-mini"], None],
    "messages": ["hi", {"role": "user", "content": "hi"}, [["user", "hi"]], None],
    "max_tokens": ["many", [1], {"n": 1}],
    "max_completion_tokens": ["x", {}],
    "n": ["two", 1.5],
    "seed": ["x", 1.5],
    "stop": [5, {"a": 1}, [1, 2]],
    "stream": ["maybe", [True]],
    "stream_options": ["on", 5],
    "temperature": ["hot", [1]],
    "top_p": ["x", {}],
    "frequency_penalty": ["x"],
    "presence_penalty": [[0]],
    "logit_bias": [[1], {"1": "x"}],
    "logprobs": ["maybe", {}],
    "top_logprobs": ["x", 1.5],
    "user": [5, []],
    "safety_identifier": [5],
    "prompt_cache_key": [5],
    "prompt_cache_retention": [5],
    "prompt_cache_options": ["x"],
    "metadata": ["x", {"k": 1}],
    "store": ["maybe"],
    "service_tier": [5],
    "modalities": ["text", ["video"]],
    "audio": ["x"],
    "verbosity": ["loud", 5],
    "reasoning_effort": ["max", 5],
    "response_format": ["json"],
    "web_search_options": [5],
    "prediction": ["x"],
    "tools": ["x", [1]],
    "tool_choice": [5],
    "parallel_tool_calls": ["maybe"],
    "functions": ["x"],
    "function_call": [5],
    "ignore_eos": ["maybe"],
    "min_tokens": ["x", -1],
    "top_k": ["x"],
    "min_p": ["x", 2],
    "repetition_penalty": ["x", 0],
    "length_penalty": ["x"],
    "skip_special_tokens": ["maybe"],
    "spaces_between_special_tokens": [[]],
    "include_stop_str_in_output": [{}],
    "chat_template_kwargs": ["x"],
    "nvext": [5],
    "kv_transfer_params": ["remote", [1]],
}
# `moderation` is typed Any (accepted as given), so no value of it is wrong.
_UNTYPED = {"moderation"}
FUZZ_CASES = [(f, v) for f, vs in FUZZ.items() for v in vs]


def test_fuzz_table_covers_every_chat_field():
    fields = set(ChatCompletionRequest.model_fields) - _UNTYPED
    assert fields <= set(FUZZ), f"add fuzz values for {sorted(fields - set(FUZZ))}"
    assert len(FUZZ_CASES) >= 40


@pytest.mark.parametrize("field,value", FUZZ_CASES, ids=[f"{f}={json.dumps(v)}" for f, v in FUZZ_CASES])
def test_fuzz_wrong_types_are_400(http, field, value):
    body = chat_body(**{field: value})
    if field == "stream_options":
        body["stream"] = True  # so only the type of stream_options is wrong
    r = http.post(CHAT, json=body)
    assert r.status_code < 500, f"{field}={value!r}: {r.status_code} {r.text[:300]}"
    err = expect_error(r, 400)
    # the error names the offending field (or something inside it)
    assert err["param"] is not None and err["param"].split(".")[0].split("[")[0] == field, err


COMPLETIONS_FUZZ = [
    ("prompt", 5), ("prompt", {"text": "hi"}), ("prompt", [[1, "a"]]), ("prompt", ["a", [1, 2]]),
    ("prompt", [1.5]), ("suffix", 5), ("echo", "maybe"), ("best_of", "x"), ("best_of", 21),
    ("logprobs", "x"), ("logprobs", 6), ("max_tokens", "x"), ("max_tokens", -1), ("n", 0),
    ("stop", 7), ("temperature", "hot"), ("seed", "s"), ("model", 5),
]


@pytest.mark.parametrize("field,value", COMPLETIONS_FUZZ,
                         ids=[f"{f}={json.dumps(v)}" for f, v in COMPLETIONS_FUZZ])
def test_fuzz_completions_wrong_values_are_400(http, field, value):
    body = {"model": INSTRUCT, "prompt": "Hello", "max_tokens": 3, field: value}
    r = http.post(COMPLETIONS, json=body)
    assert r.status_code < 500, f"{field}={value!r}: {r.status_code} {r.text[:300]}"
    err = expect_error(r, 400)
    assert err["param"] is not None and err["param"].split(".")[0].split("[")[0] == field, err


@pytest.mark.parametrize("tool_calls", [5, True])
def test_non_list_tool_calls_is_400(limited, tool_calls):
    # (--strict-params / the body limit of `limited` play no part: the body is small and known)
    body = chat_body(messages=[{"role": "assistant", "content": None, "tool_calls": tool_calls}, *MSGS])
    r = httpx.post(limited.base_url + CHAT, json=body)  # own connection: a 500 closes it
    expect_error(r, 400, param="messages[0].tool_calls")


@pytest.mark.parametrize("model,token", [(INSTRUCT, 100256), (INSTRUCT, 100270), (MODEL, 199998),
                                         (MODEL, 200005)])
def test_token_id_in_a_vocabulary_hole_is_400(limited, model, token):
    r = httpx.post(limited.base_url + COMPLETIONS, json={"model": model, "prompt": [1, token], "max_tokens": 2})
    expect_error(r, 400, param="prompt")


# --------------------------------------------------------------------------- request ids
def test_every_error_carries_a_unique_request_id(http, limited):
    responses = [
        http.post(CHAT, content=b"{"),
        http.post(CHAT, json={"model": MODEL}),
        http.post(CHAT, json=chat_body(model="gpt-nope")),
        http.post(CHAT, json=chat_body(max_tokens=10**6)),
        http.put(CHAT),
        http.post("/v1/does-not-exist"),
        http.post(COMPLETIONS, json={"model": INSTRUCT, "prompt": "x", "best_of": 1, "n": 2}),
        httpx.post(limited.base_url + CHAT, content=_padded_chat_body(LIMIT + 10)),
        httpx.post(limited.base_url + CHAT, content=_chunks(_padded_chat_body(LIMIT + 10))),
        httpx.post(limited.base_url + CHAT, json=chat_body(foo=1)),
    ]
    ids = []
    for r in responses:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        check_envelope(r.json())
        rid = r.headers.get("x-request-id")
        assert rid and rid.startswith("req_") and len(rid) > 10, (r.status_code, r.headers)
        ids.append(rid)
    assert len(set(ids)) == len(ids)


def test_sdk_exposes_request_id_of_error(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=2)
    assert ei.value.request_id == ei.value.response.headers["x-request-id"]
