"""Fuzzing: schemathesis against the app's own /openapi.json, served by the real server.

Every operation in the document gets a bounded, derandomized run (fixed seed, no example
database), one pytest subtest per operation. Required of every answer: no 5xx; every 4xx is an
error envelope (OpenAI's, or the dialect's own on the NIM, Cohere, TEI and Anthropic routes);
the content type and the body are what the document declares for the status.

To reach past the first validation error, generated bodies name a model that serves the route
(and chat-like bodies carry a well-formed conversation), and path parameters are often the id of
a real resource made before the run. Nothing is excluded: the WebSocket routes (/v1/realtime,
/metrics/stream) are not in the document, and the stateful phase is off (the resources above
stand in for its links). The server runs with an API key and an admin key, so /admin/keys can
create keys without locking the run out.
"""

from __future__ import annotations

import fnmatch
import json

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.server import run_server

API_KEY, ADMIN_KEY = "sk-fuzz", "admin-fuzz"
# Per operation: the coverage phase (each parameter's boundary and wrong-typed values, deterministic)
# and 10 fuzzed examples, valid and invalid; the generating routes get 30 valid ones, whose answers
# (JSON or streams) are checked. The usage reports share one parser: one of them gets the coverage.
_GENERATING = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"]
CONFIG = schemathesis.Config.from_dict({
    "seed": 20240610,
    "generation": {"max-examples": 10, "deterministic": True, "database": "none", "no-shrink": True},
    "phases": {"stateful": {"enabled": False}, "coverage": {"unexpected-methods": ["TRACE"]}},
    "operations": [
        {"include-path": _GENERATING, "include-method": "POST",
         "phases": {"fuzzing": {"generation": {"mode": "positive", "max-examples": 30}}}},
        {"include-path-regex": "^/v1/organization/(usage/(?!completions)|costs)",
         "phases": {"coverage": {"enabled": False}}},
    ],
})


@pytest.fixture(scope="module")
def fuzz_server():
    with run_server("--ttft", "0", "--itl", "0", "--api-key", API_KEY, "--admin-key", ADMIN_KEY) as s:
        yield s


def _auth(path: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY if path.startswith('/admin') else API_KEY}"}


# -- resources to aim at --------------------------------------------------------------------
# Random ids only ever reach a 404: path parameters are often the id of a real resource,
# made here before the fuzzing starts.

def _jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _make_resources(server) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}

    def keep(name: str, value) -> None:
        if isinstance(value, str) and value:
            ids.setdefault(name, []).append(value)

    with server.http() as h:
        def call(method: str, path: str, **kw) -> dict:
            r = h.request(method, path, headers=_auth(path), **kw)
            assert r.status_code == 200, (method, path, r.status_code, r.text)
            return r.json()

        chat = {"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "Hello"}]}
        batch_file = call("POST", "/v1/files", data={"purpose": "batch"}, files={"file": ("b.jsonl", _jsonl(
            [{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": chat}]))})["id"]
        train = [{"messages": [{"role": "user", "content": f"What is {i}+{i}?"},
                               {"role": "assistant", "content": str(2 * i)}]} for i in range(10)]
        train_file = call("POST", "/v1/files", data={"purpose": "fine-tune"},
                          files={"file": ("t.jsonl", _jsonl(train))})["id"]
        doc_file = call("POST", "/v1/files", data={"purpose": "assistants"},
                        files={"file": ("notes.txt", b"Owls hunt at night. Herons fish by day.")})["id"]
        for f in (batch_file, train_file, doc_file):
            keep("file_id", f)
        vs = call("POST", "/v1/vector_stores", json={"name": "fuzz", "file_ids": [doc_file]})["id"]
        keep("vector_store_id", vs)
        keep("file_batch_id", call("POST", f"/v1/vector_stores/{vs}/file_batches", json={"file_ids": [doc_file]})["id"])
        keep("batch_id", call("POST", "/v1/batches", json={"input_file_id": batch_file, "endpoint":
                                                            "/v1/chat/completions", "completion_window": "24h"})["id"])
        keep("fine_tuning_job_id", call("POST", "/v1/fine_tuning/jobs",
                                        json={"model": "gpt-4o-mini-2024-07-18", "training_file": train_file})["id"])
        keep("upload_id", call("POST", "/v1/uploads", json={"filename": "u.txt", "purpose": "assistants",
                                                             "bytes": 4, "mime_type": "text/plain"})["id"])
        keep("completion_id", call("POST", "/v1/chat/completions", json={**chat, "store": True})["id"])
        keep("response_id", call("POST", "/v1/responses", json={"model": "gpt-4o-mini", "input": "Hi",
                                                                 "max_output_tokens": 16})["id"])
        conv = call("POST", "/v1/conversations", json={"items": [
            {"type": "message", "role": "user", "content": "Hello there"}]})["id"]
        keep("conversation_id", conv)
        for item in call("GET", f"/v1/conversations/{conv}/items")["data"]:
            keep("item_id", item["id"])
        org = "/v1/organization"
        for user in call("GET", f"{org}/users")["data"]:
            keep("user_id", user["id"])
        keep("invite_id", call("POST", f"{org}/invites", json={"email": "fuzz@example.com", "role": "reader"})["id"])
        project = call("POST", f"{org}/projects", json={"name": "fuzz"})["id"]
        keep("project_id", project)
        account = call("POST", f"{org}/projects/{project}/service_accounts", json={"name": "bot"})
        keep("service_account_id", account["id"])
        keep("api_key_id", (account.get("api_key") or {}).get("id"))
        keep("key_id", call("POST", "/admin/keys", json={"name": "fuzz"})["id"])
    ids["model_id"] = ids["model"] = ["gpt-4o-mini", "text-embedding-3-small", "whisper-1"]
    ids["ip"] = ["127.0.0.1"]
    return ids


# -- generation -----------------------------------------------------------------------------
# A random model name only ever reaches the 404 of an unknown model: most bodies get a real
# model that can serve the route, so the fuzzed parameters reach the code behind it.
_CHAT = ["gpt-4o-mini", "gpt-5-nano", "o3-mini", "meta-llama/Llama-3.1-8B-Instruct"]
MODELS = {
    "/v1/chat/completions": _CHAT, "/v1/completions": _CHAT, "/v1/responses": _CHAT,
    "/v1/responses/input_tokens": _CHAT, "/v1/fine_tuning/jobs": ["gpt-4o-mini-2024-07-18"],
    "/v1/embeddings": ["text-embedding-3-small", "nvidia/nv-embedqa-e5-v5"],
    "/v1/ranking": ["nvidia/llama-3.2-nv-rerankqa-1b-v2"], "/v1/rerank": ["nvidia/nv-rerankqa-mistral-4b-v3"],
    "/v2/rerank": ["nvidia/nv-rerankqa-mistral-4b-v3"], "/rerank": ["nvidia/nv-rerankqa-mistral-4b-v3"],
    "/v1/images/generations": ["dall-e-2", "dall-e-3", "gpt-image-1"], "/v1/images/edits": ["gpt-image-1"],
    "/v1/images/variations": ["dall-e-2"], "/v1/audio/speech": ["tts-1", "gpt-4o-mini-tts"],
    "/v1/audio/transcriptions": ["whisper-1"], "/v1/audio/translations": ["whisper-1"],
    "/v1/moderations": ["omni-moderation-latest"],
    "/v1/messages": ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514"],
    "/v1/messages/count_tokens": ["claude-3-5-haiku-20241022"],
}
# ... and the conversation routes a well-formed conversation (or input), so that their many
# optional parameters, not a malformed message, decide the answer
_TEXT = st.text(min_size=1, max_size=60)
_CONVERSATION = _TEXT.map(lambda t: [{"role": "user", "content": t}])
_STREAM = st.booleans()  # (left to the generator, a stream is rare)
_FIXED = {"/v1/chat/completions": {"messages": _CONVERSATION, "stream": _STREAM},
          "/v1/messages": {"messages": _CONVERSATION, "stream": _STREAM},
          "/v1/messages/count_tokens": {"messages": _CONVERSATION},
          "/v1/responses": {"input": _TEXT, "stream": _STREAM}, "/v1/completions": {"prompt": _TEXT, "stream": _STREAM}}


def flatmap_body(context, body):
    path = context.operation.path
    if not isinstance(body, dict) or path not in MODELS:
        return st.just(body)
    fixed = {"model": st.sampled_from(MODELS[path])} if "model" in body else {}
    fixed.update(_FIXED.get(path, {}))
    return st.fixed_dictionaries(fixed).map(lambda f: {**body, **f})


def _path_hook(known: dict[str, list[str]]):
    def flatmap_path_parameters(context, params):
        if not isinstance(params, dict):
            return st.just(params)
        file_batch = "/file_batches/" in context.operation.path
        choices = {}
        for k, v in params.items():
            ids = known.get("file_batch_id" if file_batch and k == "batch_id" else k)
            choices[k] = st.one_of(st.sampled_from(ids), st.just(v)) if ids else st.just(v)
        return st.fixed_dictionaries(choices)
    return flatmap_path_parameters


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    schema = schemathesis.openapi.from_url(fuzz_server.base_url + "/openapi.json", config=CONFIG,
                                          headers=_auth("/openapi.json"))
    schema.hook(flatmap_body)
    schema.hook(_path_hook(_make_resources(fuzz_server)))
    return schema


# -- checks ---------------------------------------------------------------------------------

def _nim(body):  # docs/embeddings.md: each reranking dialect answers errors in its own shape
    assert set(body) == {"object", "message", "detail", "type"} and body["object"] == "error", body
    assert isinstance(body["message"], str) and isinstance(body["type"], str), body


def _cohere(body):
    assert set(body) == {"id", "message"} and isinstance(body["message"], str), body


def _tei(body):
    assert set(body) == {"error", "error_type"} and isinstance(body["error"], str), body


def _anthropic(body):  # docs/anthropic.md
    assert body.get("type") == "error" and set(body) <= {"type", "error", "request_id"}, body
    assert set(body["error"]) == {"type", "message"} and isinstance(body["error"]["message"], str), body


def _openai(body):
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an error envelope: {body!r}"
    err = body["error"]
    assert isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}, f"bad envelope: {err!r}"
    assert isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str), err
    assert err["param"] is None or isinstance(err["param"], str), err
    assert err["code"] is None or isinstance(err["code"], str), err


DIALECTS = {"/v1/ranking": _nim, "/v1/rerank": _cohere, "/v2/rerank": _cohere, "/rerank": _tei,
            "/v1/messages": _anthropic, "/v1/messages/count_tokens": _anthropic}


def error_envelope(ctx, response, case):
    """Every 4xx/5xx body is an error envelope."""
    if response.status_code < 400:
        return None
    check = DIALECTS.get(case.operation.path, _openai)
    if response.status_code == 405 and check in (_nim, _cohere, _tei):
        check = _openai  # a method no route has: refused by the router, before any dialect applies
    check(response.json())
    return True


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, error_envelope]
schema = schemathesis.pytest.from_fixture("api_schema")


def _call_and_check(case, server) -> None:
    response = case.call(base_url=server.base_url, headers=_auth(case.operation.path), timeout=30)
    case.validate_response(response, checks=CHECKS)


# Three tests, so that pytest-xdist can share them out; within one process the DELETEs run last,
# after the resources they remove have served every other operation.
@schema.include(path=list(MODELS), method="POST").parametrize()
@pytest.mark.timeout(300)
def test_generating_operation(case, fuzz_server):
    _call_and_check(case, fuzz_server)


@schema.exclude(path=list(MODELS), method="POST").exclude(method="DELETE").parametrize()
@pytest.mark.timeout(300)
def test_operation(case, fuzz_server):
    _call_and_check(case, fuzz_server)


@schema.include(method="DELETE").parametrize()
@pytest.mark.timeout(300)
def test_delete_operation(case, fuzz_server):
    _call_and_check(case, fuzz_server)


_HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("method, path, body, media_type", [
    ("GET", "/metrics", None, "text/plain"), ("GET", "/dcgm/metrics", None, "text/plain"),
    ("GET", "/metrics/csv", None, "text/csv"), ("GET", "/metrics/history.jsonl", None, "application/x-ndjson"),
    ("POST", "/v1/audio/speech", {"model": "tts-1", "input": "Hello", "voice": "alloy"}, "audio/mpeg"),
    ("POST", "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": _HI, "max_tokens": 3, "stream": True},
     "text/event-stream"),
    ("POST", "/v1/responses", {"model": "gpt-4o-mini", "input": "Hi", "max_output_tokens": 16, "stream": True},
     "text/event-stream"),
    ("POST", "/v1/messages", {"model": "claude-3-5-haiku-20241022", "messages": _HI, "max_tokens": 3, "stream": True},
     "text/event-stream"),
])
def test_documented_media_types(fuzz_server, method, path, body, media_type):
    """Found by fuzzing: these answers were documented as JSON only."""
    with fuzz_server.http() as h:
        documented = h.get("/openapi.json", headers=_auth("/")).json()["paths"][path][method.lower()]
        r = h.request(method, path, json=body, headers=_auth(path))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media_type
    content = documented["responses"]["200"]["content"]
    assert any(fnmatch.fnmatch(media_type, m) for m in content), content
