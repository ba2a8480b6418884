"""Tests for the OpenAPI-spec validation helper itself (tests/openapi_spec.py)."""

import copy
import os
import subprocess
import sys
import textwrap

import pytest

from tests import openapi_spec
from tests.openapi_spec import REPO_ROOT, validate, validate_error

CHAT = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_0123456789",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}

CHUNK = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion.chunk",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_0123456789",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                 "finish_reason": None}],
    "usage": None,
}

COMPLETION = {
    "id": "cmpl-abc123",
    "object": "text_completion",
    "created": 1_700_000_000,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [{"text": " world", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}

ERROR = {"error": {"message": "Invalid model", "type": "invalid_request_error", "param": "model",
                   "code": "model_not_found"}}


def _fails(component, instance, *needles):
    with pytest.raises(AssertionError) as exc:
        validate(component, instance)
    for needle in needles:
        assert needle in str(exc.value), str(exc.value)
    return str(exc.value)


def test_chat_completion_valid():
    validate("CreateChatCompletionResponse", CHAT)


def test_chat_completion_with_tool_calls_and_logprobs_valid():
    body = copy.deepcopy(CHAT)
    choice = body["choices"][0]
    choice["finish_reason"] = "tool_calls"
    choice["message"].update(content=None, tool_calls=[
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}])
    choice["logprobs"] = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                                       "top_logprobs": []}], "refusal": None}
    validate("CreateChatCompletionResponse", body)


def test_chat_completion_bad_finish_reason():
    body = copy.deepcopy(CHAT)
    body["choices"][0]["finish_reason"] = "bogus"
    _fails("CreateChatCompletionResponse", body, "finish_reason", "'bogus'")


@pytest.mark.parametrize("field", ["id", "object", "created", "model", "choices"])
def test_chat_completion_missing_required(field):
    body = copy.deepcopy(CHAT)
    del body[field]
    _fails("CreateChatCompletionResponse", body, f"'{field}' is a required property")


def test_chat_completion_message_requires_refusal_and_choice_requires_logprobs():
    body = copy.deepcopy(CHAT)
    del body["choices"][0]["message"]["refusal"]
    del body["choices"][0]["logprobs"]
    msg = _fails("CreateChatCompletionResponse", body, "'refusal' is a required property",
                 "'logprobs' is a required property")
    assert msg.startswith("2 schema error(s)"), msg  # all errors are listed, not just the first


def test_chat_completion_rejects_null_system_fingerprint_and_usage():
    body = copy.deepcopy(CHAT)
    body["system_fingerprint"] = None
    body["usage"] = None
    _fails("CreateChatCompletionResponse", body, "$.system_fingerprint", "$.usage")


def test_stream_chunk_valid():
    validate("CreateChatCompletionStreamResponse", CHUNK)


def test_stream_final_chunks_valid():
    last = copy.deepcopy(CHUNK)
    last["choices"][0].update(delta={}, finish_reason="stop")
    validate("CreateChatCompletionStreamResponse", last)
    usage_only = dict(CHUNK, choices=[], usage=CHAT["usage"])
    validate("CreateChatCompletionStreamResponse", usage_only)


def test_stream_chunk_invalid():
    bad = copy.deepcopy(CHUNK)
    bad["object"] = "chat.completion"
    del bad["choices"][0]["finish_reason"]
    _fails("CreateChatCompletionStreamResponse", bad, "$.object", "'finish_reason' is a required")
    bad = copy.deepcopy(CHUNK)
    bad["choices"][0]["finish_reason"] = "bogus"
    _fails("CreateChatCompletionStreamResponse", bad, "$.choices[0].finish_reason")


def test_list_models_valid_and_invalid():
    model = {"id": "gpt-4o-mini", "object": "model", "created": 1_700_000_000, "owned_by": "system"}
    validate("ListModelsResponse", {"object": "list", "data": [model]})
    no_owner = {k: v for k, v in model.items() if k != "owned_by"}
    _fails("ListModelsResponse", {"object": "list", "data": [no_owner]}, "$.data[0]", "'owned_by'")


def test_completion_valid():
    validate("CreateCompletionResponse", COMPLETION)


def test_completion_invalid():
    body = copy.deepcopy(COMPLETION)
    body["object"] = "chat.completion"
    del body["choices"][0]["text"]
    _fails("CreateCompletionResponse", body, "$.object", "'text' is a required property")


def test_error_envelope_valid():
    validate_error(ERROR)
    validate_error({"error": {"message": "boom", "type": "server_error", "param": None, "code": None}})


def test_error_envelope_missing_param():
    body = copy.deepcopy(ERROR)
    del body["error"]["param"]
    with pytest.raises(AssertionError, match="'param' is a required property"):
        validate_error(body)


def test_error_envelope_extra_key():
    body = copy.deepcopy(ERROR)
    body["error"]["status"] = 400  # schema allows extra keys; the helper does not
    with pytest.raises(AssertionError, match="extra \\['status'\\]"):
        validate_error(body)


def test_many_errors_are_capped():
    body = {"object": "list", "data": [{}] * 5}  # 4 required fields missing per model
    msg = _fails("ListModelsResponse", body, "20 schema error(s)", "... and 10 more")
    assert msg.count("is a required property") == 10


def test_unknown_component_is_a_clear_error():
    openapi_spec.require_spec()
    with pytest.raises(KeyError, match="CreateChatCompletionResponse"):
        validate("CreateChatCompletionResponce", {})


def test_nullable_keyword_is_translated():
    # The 3.1 spec still carries OpenAPI 3.0 `nullable: true` (e.g. stream `usage`).
    spec = openapi_spec.load_spec()
    usage = spec["components"]["schemas"]["CreateChatCompletionStreamResponse"]["properties"]["usage"]
    assert usage.get("nullable") is True
    to_js = openapi_spec._to_json_schema
    assert to_js({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"], "enum": ["a", None]}
    assert to_js({"$ref": "#/x", "nullable": True}) == {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}
    assert to_js({"allOf": [{"$ref": "#/x"}, {"nullable": True}]}) == {
        "anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}]}
    assert to_js({"properties": {"nullable": {"type": "string"}}}) == {
        "properties": {"nullable": {"type": "string"}}}


def test_missing_spec_skips(monkeypatch, tmp_path):
    monkeypatch.setattr(openapi_spec, "SPEC_PATH", tmp_path / "nope.yaml")
    assert not openapi_spec.spec_available()
    for call in (openapi_spec.require_spec, openapi_spec.load_spec, lambda: validate("Model", {})):
        with pytest.raises(pytest.skip.Exception, match=r"not found at .*nope\.yaml.*FAKEAI_OPENAPI_SPEC"):
            call()


def test_env_override_missing_spec_skips_in_subprocess(tmp_path):
    (tmp_path / "test_needs_spec.py").write_text(textwrap.dedent("""
        from tests.openapi_spec import validate
        def test_it():
            validate("Model", {})
    """))
    env = dict(os.environ, FAKEAI_OPENAPI_SPEC=str(tmp_path / "absent.yaml"), PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 skipped" in out and "absent.yaml" in out, out
