"""Two replicas sharing one Redis (``--store redis``), driven through the official SDK: what a
client does through one replica is seen through the other (docs/files-and-batches.md,
docs/organization.md, docs/security.md).

Each part uses a model of its own, so that the shared per-model request budget
(``--rate-limit-rpm``) of one part is never spent by another.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

import httpx
import openai
import pytest

from tests.openapi_spec import validate, validate_error
from tests.redis_server import run_redis
from tests.server import run_server, wait_for

RPM = 12
EXTRA = 4


@contextmanager
def replicas(url: str, *extra: str):
    """Two servers on the Redis at ``url``, started together."""
    args = ("--ttft", "0", "--itl", "0", "--store", "redis", "--redis-url", url, *extra)
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        yield list(pool.map(lambda _: stack.enter_context(run_server(*args)), range(2)))


@pytest.fixture(scope="module")
def pair():
    with run_redis(durable=False) as url:
        with replicas(url, "--rate-limit-rpm", str(RPM), "--usage-flush-ms", "200") as servers:
            yield servers


def test_a_batch_crosses_replicas(pair):
    a, b = (s.client() for s in pair)
    rows = [{"custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-4o-mini", "max_tokens": 8,
                      "messages": [{"role": "user", "content": f"Replica fact {i} about herons."}]}}
            for i in range(5)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    uploaded = a.files.create(file=("replicas.jsonl", data), purpose="batch")
    assert b.files.retrieve(uploaded.id).bytes == len(data)
    assert b.files.content(uploaded.id).content == data  # the content too, not only the record

    batch = b.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    seen = []

    def done() -> bool:
        got = (a, b)[len(seen) % 2].batches.retrieve(batch.id)
        seen.append(got.status)
        return got.status in ("completed", "failed", "cancelled", "expired")

    assert wait_for(done, timeout=30, interval=0.1)
    final = a.batches.retrieve(batch.id)
    validate("Batch", final.model_dump(mode="json", exclude_unset=True))
    assert final.status == "completed", final.errors
    assert final.request_counts.completed == final.request_counts.total == len(rows)
    assert final.error_file_id is None
    assert b.batches.retrieve(batch.id).output_file_id == final.output_file_id
    out = [json.loads(x) for x in a.files.content(final.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in out) == sorted(r["custom_id"] for r in rows)
    for x in out:
        assert x["response"]["status_code"] == 200 and x["error"] is None
        validate("CreateChatCompletionResponse", x["response"]["body"])


def usage_totals(client: httpx.Client, start: int, model: str) -> tuple[int, int, int]:
    r = client.get("/v1/organization/usage/completions", params={"start_time": start, "models": model})
    assert r.status_code == 200, r.text
    page = r.json()
    validate("UsageResponse", page)
    results = [x for bucket in page["data"] for x in bucket["results"]]
    return (sum(x["input_tokens"] for x in results), sum(x["output_tokens"] for x in results),
            sum(x["num_model_requests"] for x in results))


def test_usage_recorded_by_both_replicas_is_read_through_either(pair):
    model = "gpt-4.1-mini"
    start = int(time.time()) - 60
    expected = [0, 0, 0]
    for i, s in enumerate(pair * 3):  # three requests through each
        r = s.client().chat.completions.create(model=model, max_tokens=10 + i,
                                               messages=[{"role": "user", "content": f"Usage probe {i}."}])
        expected[0] += r.usage.prompt_tokens
        expected[1] += r.usage.completion_tokens
        expected[2] += 1
    # each replica writes its usage every --usage-flush-ms; a read flushes only the replica it reaches
    for s in pair:
        with s.http() as h:
            assert wait_for(lambda: usage_totals(h, start, model) == tuple(expected), timeout=10, interval=0.1), (
                usage_totals(h, start, model), expected)


def test_rate_limits_hold_across_replicas(pair):
    model = "gpt-4.1-nano"
    clients = [s.client() for s in pair]

    def one(i: int):
        try:
            return clients[i % 2].chat.completions.create(
                model=model, max_tokens=2, messages=[{"role": "user", "content": f"Limit probe {i}."}])
        except openai.RateLimitError as e:
            return e

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(RPM + EXTRA)))
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == EXTRA, [type(r).__name__ for r in results]
    for e in refused:
        validate_error(e.response.json())
        assert e.code == "rate_limit_exceeded" and e.type == "requests"
        assert f"on requests per min (RPM): Limit {RPM}, Used " in e.message
        assert 1 <= int(e.response.headers["retry-after"]) <= 60
        assert int(e.response.headers["retry-after-ms"]) > 0
    # the budget is spent for both replicas, not one budget each
    for i in range(2):
        e = one(i)
        assert isinstance(e, openai.RateLimitError) and f"Limit {RPM}, Used {RPM}, Requested 1" in e.message
    # and another model's budget is untouched, on both
    for c in clients:
        assert c.chat.completions.create(model="gpt-4.1", max_tokens=2,
                                         messages=[{"role": "user", "content": "other model"}]).choices


def test_stored_chat_completions_and_responses_cross_replicas(pair):
    a, b = (s.client() for s in pair)
    made = a.chat.completions.create(model="gpt-4o", store=True, max_tokens=12, metadata={"replica": "a"},
                                     messages=[{"role": "user", "content": "Name three rivers of Europe."}])
    got = b.chat.completions.retrieve(made.id)
    validate("CreateChatCompletionResponse", got.model_dump(mode="json", exclude_unset=True))
    assert got.id == made.id and got.choices[0].message.content == made.choices[0].message.content
    assert got.metadata == {"replica": "a"}
    msgs = b.chat.completions.messages.list(made.id)
    assert [m.content for m in msgs.data] == ["Name three rivers of Europe."]

    first = a.responses.create(model="gpt-4.1", input="Pick a number between one and ten.", max_output_tokens=20)
    again = b.responses.retrieve(first.id)
    validate("Response", again.model_dump(mode="json", exclude_unset=True))
    assert again.id == first.id and again.output_text == first.output_text and again.status == first.status
    follow = b.responses.create(model="gpt-4.1", previous_response_id=first.id, input="And another?",
                                max_output_tokens=20)
    assert follow.previous_response_id == first.id
    # the follow-up's prompt holds the first exchange, which only replica A served
    assert follow.usage.input_tokens > first.usage.input_tokens
    items = a.responses.input_items.list(follow.id)
    assert "And another?" in json.dumps([it.model_dump(mode="json") for it in items.data])


# -- admin keys --------------------------------------------------------------------------

ADMIN = "adm-replicas-0123456789abcdef0123"
CONFIG_KEY = "sk-config-replicas-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded():
    with run_redis(durable=False) as url:
        with replicas(url, "--api-key", CONFIG_KEY, "--admin-key", ADMIN) as servers:
            yield servers


def create_key(s, name: str) -> dict:
    r = httpx.post(s.base_url + "/admin/keys", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN}"},
                   timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def sdk(s, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.api_url, api_key=key, max_retries=0)


def accepts(s, key: str) -> bool:
    try:
        return bool(sdk(s, key).models.list().data)
    except openai.AuthenticationError:
        return False


def test_an_admin_key_made_on_one_replica_works_on_the_other(guarded):
    a, b = guarded
    made = create_key(a, "shared")
    assert accepts(a, made["key"])  # at once where it was made
    assert wait_for(lambda: accepts(b, made["key"]), timeout=10, interval=0.2)  # and soon on the other
    listed = httpx.get(b.base_url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10).json()
    assert made["id"] in {k["id"] for k in listed["data"]}
    assert made["key"] not in json.dumps(listed)  # never the key itself
    assert accepts(b, CONFIG_KEY) and accepts(a, CONFIG_KEY)  # the configured key still works on both

    # revoked through B: refused by B at once and by A soon after
    r = httpx.delete(f"{b.base_url}/admin/keys/{made['id']}", headers={"Authorization": f"Bearer {ADMIN}"},
                     timeout=10)
    assert r.status_code == 200, r.text
    assert not accepts(b, made["key"])
    assert wait_for(lambda: not accepts(a, made["key"]), timeout=10, interval=0.2)
