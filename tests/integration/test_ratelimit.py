"""Rate limits per key and model: OpenAI's 429s and headers, exact under concurrency,
token estimates reconciled with the real usage, tiers, and Redis shared by replicas.

Counters are per (key, model): tests on one server use different models so they do
not share a budget.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import openai
import pytest

from fakeai.security.ratelimit import tier_table
from tests.openapi_spec import validate, validate_error
from tests.redis_server import run_redis
from tests.server import run_server

DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")
HEADERS = [f"x-ratelimit-{w}-{k}" for k in ("requests", "tokens") for w in ("limit", "remaining", "reset")]
MSGS = [{"role": "user", "content": "Tell me about the weather."}]


def chat(model: str, max_tokens: int = 5, **kw) -> dict:
    return {"model": model, "messages": MSGS, "max_tokens": max_tokens, **kw}


async def burst(urls: list[str], body: dict) -> list[httpx.Response]:
    """One POST per URL, all in flight at once."""
    async with httpx.AsyncClient(timeout=30) as c:
        return await asyncio.gather(*(c.post(u + "/v1/chat/completions", json=body) for u in urls))


@pytest.fixture(scope="module")
def limited():
    """RPM 5 and TPM 1000; completions stop after about 10 tokens (at the end of a sentence)."""
    with run_server("--ttft", "0", "--itl", "0", "--rate-limit-rpm", "5", "--rate-limit-tpm", "1000",
                    "--output-length", "fixed", "--output-tokens", "10") as s:
        yield s


def test_n_plus_one_parallel_requests_give_exactly_one_429(limited):
    rs = asyncio.run(burst([limited.base_url] * 6, chat("gpt-4o-mini")))
    codes = sorted(r.status_code for r in rs)
    assert codes == [200] * 5 + [429]
    ok = [r for r in rs if r.status_code == 200]
    assert sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok) == [0, 1, 2, 3, 4]
    refused = next(r for r in rs if r.status_code == 429)
    body = refused.json()
    validate_error(body)
    err = body["error"]
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
    assert err["message"].startswith("Rate limit reached for gpt-4o-mini in organization ")
    assert "requests per min (RPM): Limit 5, Used 5, Requested 1." in err["message"]
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60 and 0 < int(refused.headers["retry-after-ms"]) <= 60_000
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    for r in rs:
        for h in HEADERS:
            assert h in r.headers, h
        assert DURATION.match(r.headers["x-ratelimit-reset-requests"])
        assert r.headers["x-ratelimit-limit-requests"] == "5" and r.headers["x-ratelimit-limit-tokens"] == "1000"


def test_headers_on_streaming_and_sdk_responses(limited):
    client = openai.OpenAI(base_url=limited.api_url, api_key="sk-any", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(**chat("gpt-4o"))
    validate("CreateChatCompletionResponse", raw.parse().model_dump(exclude_unset=True))
    assert raw.headers["x-ratelimit-limit-requests"] == "5"
    with httpx.stream("POST", limited.base_url + "/v1/chat/completions",
                      json=chat("gpt-4o", stream=True), timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-ratelimit-remaining-requests"] == "3"
        assert DURATION.match(r.headers["x-ratelimit-reset-tokens"])
        assert b"[DONE]" in r.read()


def test_token_estimate_is_reconciled_with_the_real_usage(limited):
    with limited.http() as c:
        r1 = c.post("/v1/chat/completions", json=chat("gpt-4.1", 900))
        assert r1.status_code == 200
        u1 = r1.json()["usage"]
        assert u1["completion_tokens"] < 100  # far below the 900 the estimate counted
        # the estimate: prompt tokens + max_tokens
        assert int(r1.headers["x-ratelimit-remaining-tokens"]) == 1000 - (u1["prompt_tokens"] + 900)
        r2 = c.post("/v1/chat/completions", json=chat("gpt-4.1", 50))
        u2 = r2.json()["usage"]
        # the first request was corrected to its real usage (its completion tokens, not 900)
        assert int(r2.headers["x-ratelimit-remaining-tokens"]) == 1000 - u1["total_tokens"] - (u2["prompt_tokens"] + 50)
        # a request whose estimate does not fit what is left waits for tokens
        r3 = c.post("/v1/chat/completions", json=chat("gpt-4.1", 950))
        assert r3.status_code == 429 and r3.json()["error"]["type"] == "tokens"
        assert "tokens per min (TPM): Limit 1000" in r3.json()["error"]["message"]
        assert "retry-after" in r3.headers


def test_a_request_larger_than_the_limit_can_never_run(limited):
    with limited.http() as c:
        r = c.post("/v1/chat/completions", json=chat("gpt-4.1-mini", 2000))
    assert r.status_code == 429
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("tokens", "rate_limit_exceeded")
    assert err["message"].startswith("Request too large for gpt-4.1-mini")
    assert "retry-after" not in r.headers  # waiting would not help


def test_sdk_retries_a_429_after_retry_after_and_succeeds():
    """120 RPM enforced per second (OpenAI's quantized limits): 2 requests per 1 s window."""
    statuses: list[int] = []
    hooks = {"response": [lambda r: statuses.append(r.status_code)]}
    with run_server("--ttft", "0", "--itl", "0", "--rate-limit-rpm", "120", "--rate-limit-quantum-s", "1") as s:
        retrying = openai.OpenAI(base_url=s.api_url, api_key="sk-any", max_retries=2,
                                 http_client=httpx.Client(event_hooks=hooks))
        for _ in range(3):
            retrying.chat.completions.create(**chat("gpt-4o-mini"))
        assert statuses[:2] == [200, 200] and statuses[2] == 429 and statuses[-1] == 200
        # without retries the SDK raises RateLimitError carrying OpenAI's headers
        plain = openai.OpenAI(base_url=s.api_url, api_key="sk-any", max_retries=0)
        with pytest.raises(openai.RateLimitError) as e:
            for _ in range(3):
                plain.chat.completions.create(**chat("gpt-4o"))
        assert e.value.code == "rate_limit_exceeded"
        assert e.value.response.headers["x-ratelimit-limit-requests"] == "2"  # 120 per minute, per second
        assert float(e.value.response.headers["retry-after-ms"]) <= 1000


def test_tiers_use_openais_numbers_with_day_limits():
    free = dict(tier_table()["free"])
    with run_server("--ttft", "0", "--itl", "0", "--rate-limit-tier", "free", "--rate-limit-rpd", "2",
                    "--rate-limit-tpd", "300", "--output-length", "fixed", "--output-tokens", "150") as s, \
            s.http() as c:
        r = c.post("/v1/chat/completions", json=chat("gpt-4o-mini"))
        assert r.headers["x-ratelimit-limit-requests"] == str(free["gpt-4o-mini*"].rpm) == "3"
        assert r.headers["x-ratelimit-limit-tokens"] == str(free["gpt-4o-mini*"].tpm)
        assert c.post("/v1/chat/completions", json=chat("gpt-4o-mini")).status_code == 200
        r = c.post("/v1/chat/completions", json=chat("gpt-4o-mini"))
        assert r.status_code == 429 and "requests per day (RPD): Limit 2, Used 2" in r.json()["error"]["message"]
        # tokens per day: 150 real completion tokens + the next estimate exceed 300
        assert c.post("/v1/chat/completions", json=chat("gpt-4o", 200)).status_code == 200
        r = c.post("/v1/chat/completions", json=chat("gpt-4o", 200))
        assert r.status_code == 429 and "tokens per day (TPD): Limit 300" in r.json()["error"]["message"]
        # embeddings have their own row and bucket
        r = c.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hello"})
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-requests"] == str(free["text-embedding-*"].rpm)


def test_redis_store_shares_limits_between_replicas():
    with run_redis(durable=False) as url:
        args = ("--ttft", "0", "--itl", "0", "--store", "redis", "--redis-url", url, "--rate-limit-rpm", "5")
        with ExitStack() as stack, ThreadPoolExecutor(2) as pool:  # the two replicas start together
            a, b = pool.map(lambda _: stack.enter_context(run_server(*args)), range(2))
            rs = asyncio.run(burst([a.base_url, b.base_url] * 3, chat("gpt-4o-mini")))
            assert sorted(r.status_code for r in rs) == [200] * 5 + [429]
            refused = next(r for r in rs if r.status_code == 429)
            assert refused.json()["error"]["code"] == "rate_limit_exceeded"
            assert 1 <= int(refused.headers["retry-after"]) <= 60
            # another model has its own budget, in the same shared store
            assert asyncio.run(burst([a.base_url, b.base_url], chat("gpt-4o")))[0].status_code == 200


def test_no_rate_limit_headers_when_limits_are_off(client):
    raw = client.chat.completions.with_raw_response.create(**chat("gpt-4o-mini"))
    assert not any(h.startswith("x-ratelimit-") for h in raw.headers)
