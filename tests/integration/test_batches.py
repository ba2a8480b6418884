"""/v1/batches through the official SDK against a real server: every line runs through
the app, output and error files carry every custom_id once with spec-valid bodies,
input files that fail the batch, cancel, expiry, pagination, 404s, and the
concurrency and speed-up settings."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import openai
import pytest

from fakeai.api.middleware import RequestMeta
from fakeai.services.batches import KIND
from fakeai.store.sqlite import SQLiteStore
from tests.openapi_spec import validate, validate_error
from tests.server import run_server, wait_for

ENDPOINTS = {
    "/v1/chat/completions": ("CreateChatCompletionResponse", lambda i: {
        "model": "gpt-4o-mini", "max_tokens": 12,
        "messages": [{"role": "user", "content": f"Tell me fact number {i} about owls."}]}),
    "/v1/completions": ("CreateCompletionResponse", lambda i: {
        "model": "gpt-3.5-turbo-instruct", "prompt": f"Line {i}:", "max_tokens": 8}),
    "/v1/embeddings": ("CreateEmbeddingResponse", lambda i: {
        "model": "text-embedding-3-small", "input": [f"text {i}", "more"]}),
    "/v1/moderations": ("CreateModerationResponse", lambda i: {
        "model": "omni-moderation-latest", "input": f"a kind sentence {i}"}),
    "/v1/responses": ("Response", lambda i: {
        "model": "gpt-4o-mini", "input": f"Name a colour ({i}).", "max_output_tokens": 16}),
}
DONE = ("completed", "failed", "cancelled", "expired")


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """Batch lines of 2000 ms / 40 = 50 ms each, two at a time; live requests take 2 s."""
    data = str(tmp_path_factory.mktemp("batches") / "data")
    with run_server("--data-dir", data, "--ttft", "2000", "--itl", "0", "--batch-speedup", "40",
                    "--batch-concurrency", "2") as s:
        s.data_dir = data
        yield s


def jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


def line(cid: str, url: str, body: dict) -> dict:
    return {"custom_id": cid, "method": "POST", "url": url, "body": body}


def lines_for(url: str, n: int, prefix: str = "req") -> list[dict]:
    return [line(f"{prefix}-{i}", url, ENDPOINTS[url][1](i)) for i in range(n)]


def start(client, rows: list[dict], endpoint: str = "/v1/chat/completions", **kw):
    f = client.files.create(file=("in.jsonl", jsonl(rows)), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h", **kw)


def finish(client, batch_id: str, timeout: float = 30.0):
    assert wait_for(lambda: client.batches.retrieve(batch_id).status in DONE, timeout, 0.05), \
        client.batches.retrieve(batch_id)
    raw = client.batches.with_raw_response.retrieve(batch_id).http_response.json()
    validate("Batch", raw)
    return client.batches.retrieve(batch_id)


def read_jsonl(client, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    f = client.files.retrieve(file_id)
    assert f.purpose == "batch_output"
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines() if x]


def error_of(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    validate_error(body)
    return body["error"]


def test_chat_batch_end_to_end(client):
    rows = lines_for("/v1/chat/completions", 40)
    bad = [line("bad-missing", "/v1/chat/completions", {"model": "gpt-4o-mini"}),
           line("bad-temp", "/v1/chat/completions",
                {"model": "gpt-4o-mini", "temperature": 9, "messages": [{"role": "user", "content": "x"}]})]
    created = start(client, rows[:20] + bad + rows[20:], metadata={"job": "nightly"})
    raw = client.batches.with_raw_response.retrieve(created.id).http_response.json()
    validate("Batch", raw)
    assert created.status == "validating" and created.metadata == {"job": "nightly"}
    assert created.expires_at == created.created_at + 86400
    b = finish(client, created.id)
    assert b.status == "completed", b
    assert (b.request_counts.total, b.request_counts.completed, b.request_counts.failed) == (42, 40, 2)
    assert b.model == "gpt-4o-mini" and b.metadata == {"job": "nightly"}
    assert b.in_progress_at and b.finalizing_at and b.completed_at
    out, err = read_jsonl(client, b.output_file_id), read_jsonl(client, b.error_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(r["custom_id"] for r in rows)  # each exactly once
    prompt_tokens = completion_tokens = 0
    for o in out:
        assert o["id"].startswith("batch_req_") and o["error"] is None
        assert o["response"]["status_code"] == 200 and o["response"]["request_id"].startswith("req_")
        validate("CreateChatCompletionResponse", o["response"]["body"])
        prompt_tokens += o["response"]["body"]["usage"]["prompt_tokens"]
        completion_tokens += o["response"]["body"]["usage"]["completion_tokens"]
    assert sorted(e["custom_id"] for e in err) == ["bad-missing", "bad-temp"]
    for e in err:
        assert e["response"]["status_code"] == 400 and e["error"] is None
        validate_error(e["response"]["body"])
    assert {e["custom_id"]: e["response"]["body"]["error"]["param"] for e in err} == {
        "bad-missing": "messages", "bad-temp": "temperature"}
    assert b.usage.input_tokens == prompt_tokens and b.usage.output_tokens == completion_tokens
    assert b.usage.total_tokens == prompt_tokens + completion_tokens


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e != "/v1/chat/completions"])
def test_every_endpoint(client, endpoint):
    component = ENDPOINTS[endpoint][0]
    b = finish(client, start(client, lines_for(endpoint, 6), endpoint).id)
    assert b.status == "completed" and b.request_counts.total == 6
    out, err = read_jsonl(client, b.output_file_id), read_jsonl(client, b.error_file_id)
    assert sorted(o["custom_id"] for o in out + err) == sorted(f"req-{i}" for i in range(6))
    assert b.request_counts.completed == len(out) and b.request_counts.failed == len(err)
    assert out, err[:1]
    for o in out:
        validate(component, o["response"]["body"])


@pytest.mark.parametrize("rows,code,line_no", [
    (lines_for("/v1/chat/completions", 2) + lines_for("/v1/embeddings", 1, "emb"), "invalid_url", 3),
    (lines_for("/v1/chat/completions", 2) + [line("x", "/v1/chat/completions", {
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})], "mismatched_model", 3),
    (lines_for("/v1/chat/completions", 3) + lines_for("/v1/chat/completions", 1), "duplicate_custom_id", 4),
    ([line("s", "/v1/chat/completions", {"model": "gpt-4o-mini", "stream": True,
                                         "messages": [{"role": "user", "content": "hi"}]})],
     "streaming_unsupported", 1),
])
def test_bad_input_files_fail_the_batch(client, rows, code, line_no):
    b = finish(client, start(client, rows).id)
    assert b.status == "failed" and b.failed_at
    assert b.output_file_id is None and b.error_file_id is None
    assert [(e.code, e.line) for e in b.errors.data] == [(code, line_no)]


def test_wrong_purpose_fails_the_batch(client):
    f = client.files.create(file=("in.jsonl", jsonl(lines_for("/v1/chat/completions", 2))), purpose="user_data")
    b = finish(client, client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                             completion_window="24h").id)
    assert b.status == "failed"
    assert [(e.code, e.param) for e in b.errors.data] == [("invalid_file_purpose", "input_file_id")]
    assert "user_data" in b.errors.data[0].message


def test_create_errors(client):
    f = client.files.create(file=("in.jsonl", jsonl(lines_for("/v1/chat/completions", 1))), purpose="batch")
    with pytest.raises(openai.NotFoundError) as e:
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    assert error_of(e.value)["param"] == "input_file_id"
    for kw, param in (({"endpoint": "/v1/images/edits"}, "endpoint"), ({"completion_window": "48h"},
                      "completion_window"), ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata")):
        args = {"input_file_id": f.id, "endpoint": "/v1/chat/completions", "completion_window": "24h", **kw}
        with pytest.raises(openai.BadRequestError) as e:
            client.batches.create(**args)
        assert error_of(e.value)["param"] == param


def test_unknown_batch_is_404(server):
    with server.http() as http:
        for method, path in (("GET", "/v1/batches/batch_nope"), ("POST", "/v1/batches/batch_nope/cancel")):
            r = http.request(method, path)
            assert r.status_code == 404 and "batch_nope" in r.json()["error"]["message"]
            validate_error(r.json())


def test_list_pagination(client):
    ids = [start(client, lines_for("/v1/embeddings", 1), "/v1/embeddings").id for _ in range(3)]
    first = client.batches.with_raw_response.list(limit=2).http_response.json()
    validate("ListBatchesResponse", first)
    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["has_more"] is True
    rest = client.batches.list(limit=2, after=first["data"][-1]["id"])
    assert rest.data[0].id == ids[0]
    assert [b.id for b in client.batches.list(limit=1) if b.id in ids] == ids[::-1]  # auto-paging
    for i in ids:
        finish(client, i)


def test_cancel_reports_every_line(slow):
    c = slow.client()
    rows = lines_for("/v1/chat/completions", 60)
    b = start(c, rows)
    assert wait_for(lambda: c.batches.retrieve(b.id).request_counts.completed >= 4, 20, 0.02)
    cancelled = c.batches.cancel(b.id)
    assert cancelled.status in ("cancelling", "cancelled") and cancelled.cancelling_at
    b = finish(c, b.id)
    assert b.status == "cancelled" and b.cancelled_at
    assert 4 <= b.request_counts.completed < 60 and b.request_counts.total == 60
    out, err = read_jsonl(c, b.output_file_id), read_jsonl(c, b.error_file_id)
    assert len(out) == b.request_counts.completed
    assert sorted(x["custom_id"] for x in out + err) == sorted(r["custom_id"] for r in rows)
    assert {e["error"]["code"] for e in err} == {"batch_cancelled"}
    assert all(e["response"] is None for e in err)
    assert c.batches.cancel(b.id).status == "cancelled"  # again: no change
    done = finish(c, start(c, lines_for("/v1/chat/completions", 1)).id)
    with pytest.raises(openai.ConflictError) as e:
        c.batches.cancel(done.id)
    assert "completed" in error_of(e.value)["message"]


def test_expired_batch_reports_unrun_lines(slow):
    """When the 24 h window closes (moved into the past in the store here) the batch
    stops, keeps what ran, and reports the rest as batch_expired."""
    c = slow.client()
    rows = lines_for("/v1/chat/completions", 50)
    b = start(c, rows)
    assert wait_for(lambda: c.batches.retrieve(b.id).request_counts.completed >= 2, 20, 0.02)
    asyncio.run(_expire_now(slow.data_dir, b.id))
    b = finish(c, b.id)
    assert b.status == "expired" and b.expired_at
    out, err = read_jsonl(c, b.output_file_id), read_jsonl(c, b.error_file_id)
    assert 2 <= len(out) < 50
    assert sorted(x["custom_id"] for x in out + err) == sorted(r["custom_id"] for r in rows)
    assert {e["error"]["code"] for e in err} == {"batch_expired"}


async def _expire_now(data_dir: str, batch_id: str) -> None:
    store = SQLiteStore(data_dir)  # the server's own database, shared the way replicas share it
    await store.open()
    try:
        await store.update(KIND, batch_id, lambda d: {**d, "expires_at": int(time.time()) - 1})
    finally:
        await store.close()


def test_concurrency_and_speedup_apply_to_batch_lines_only(slow):
    """Lines take ttft / batch_speedup each, batch_concurrency at a time; a live request
    on the same server still takes the full ttft."""
    c = slow.client()
    live: dict[str, float] = {}

    def live_request():
        t = time.monotonic()
        c.chat.completions.create(model="gpt-4o-mini", max_tokens=1,
                                  messages=[{"role": "user", "content": "hi"}])
        live["s"] = time.monotonic() - t

    thread = threading.Thread(target=live_request)
    thread.start()
    t0 = time.monotonic()
    b = start(c, lines_for("/v1/chat/completions", 8))
    b = finish(c, b.id)
    took = time.monotonic() - t0
    thread.join()
    assert b.status == "completed" and b.request_counts.completed == 8
    assert took >= 4 * 0.05, took  # 8 lines of 50 ms, 2 at a time: 4 rounds at least
    assert took < 1.5, took  # one line at the full 2 s would not fit
    assert live["s"] >= 2.0, live


def batch_usage(server) -> dict[bool, tuple[float, float, float]]:
    """(requests, input, output tokens) of the last day's completions usage, by ``batch``."""
    with server.http() as http:
        r = http.get("/v1/organization/usage/completions",
                     params={"start_time": int(time.time()) - 86400, "group_by": "batch", "limit": 2})
    assert r.status_code == 200, r.text
    out = {False: (0, 0, 0), True: (0, 0, 0)}
    for bucket in r.json()["data"]:
        for row in bucket["results"]:
            n, i, o = out[row["batch"]]
            out[row["batch"]] = (n + row["num_model_requests"], i + row["input_tokens"], o + row["output_tokens"])
    return out


def test_batch_lines_count_as_batch_usage(client, server):
    """Usage accounting sees batch lines as batch traffic; an outside request that sends the
    batch header is still counted as live."""
    before = batch_usage(server)
    b = finish(client, start(client, lines_for("/v1/chat/completions", 5)).id)
    client.chat.completions.create(model="gpt-4o-mini", max_tokens=3, messages=[{"role": "user", "content": "x"}],
                                   extra_headers={"x-fakeai-batch-id": b.id})
    after = batch_usage(server)
    assert after[True][0] - before[True][0] == 5
    assert after[True][1] - before[True][1] == b.usage.input_tokens
    assert after[True][2] - before[True][2] == b.usage.output_tokens
    assert after[False][0] - before[False][0] == 1


def test_outside_requests_cannot_pose_as_batch_lines():
    """The middleware drops x-fakeai-batch-id from outside requests; an in-process
    batch line (scope state batch_id) keeps it."""
    seen = []

    async def app(scope, receive, send):
        seen.append((dict(scope["headers"]).get(b"x-fakeai-batch-id"), scope["state"].get("batch_id")))

    mw = RequestMeta(app, max_body=1 << 20)
    header = [(b"x-fakeai-batch-id", b"batch_spoof")]

    async def go():
        await mw({"type": "http", "path": "/v1/chat/completions", "headers": header, "state": {}}, None, None)
        await mw({"type": "http", "path": "/v1/chat/completions", "headers": header,
                  "state": {"batch_id": "batch_real"}}, None, None)

    asyncio.run(go())
    assert seen == [(None, None), (b"batch_spoof", "batch_real")]


def test_lines_run_as_the_creators_key_which_is_never_stored(tmp_path):
    key = "sk-batch-owner-0123456789abcdef0123456789abcdef"
    with run_server("--ttft", "0", "--itl", "0", "--api-key", key, "--data-dir", str(tmp_path)) as s:
        client = openai.OpenAI(base_url=s.api_url, api_key=key, max_retries=0)
        batch = finish(client, start(client, lines_for("/v1/chat/completions", 3)).id)
        assert batch.status == "completed" and batch.request_counts.completed == 3
        assert all(r["response"]["status_code"] == 200 for r in read_jsonl(client, batch.output_file_id))
    for path in tmp_path.rglob("*"):  # the database, its WAL and every blob
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
