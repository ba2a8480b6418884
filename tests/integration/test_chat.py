"""Chat completions through the official openai SDK against the real server."""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import validate

MODEL = "gpt-4o-mini"  # o200k_base
O200K = get_tokenizer("o200k_base")


def chat_prompt_tokens(tok, messages) -> int:
    """OpenAI's published counting rule, computed independently of the server."""
    n = 3
    for m in messages:
        n += 3 + len(tok.encode(m["role"])) + len(tok.encode(m["content"]))
        if "name" in m:
            n += 1 + len(tok.encode(m["name"]))
    return n


def sse_events(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    events = events[:-1]
    for e in events:
        assert e.startswith(b"data: "), e
    return [e[6:] for e in events]


def test_non_streaming_usage_and_spec(server, client):
    messages = [
        {"role": "developer", "content": "You are terse."},
        {"role": "user", "content": "Explain photosynthesis in plants.", "name": "ana"},
    ]
    with server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "max_tokens": 60})
    assert r.status_code == 200
    body = r.json()
    validate("CreateChatCompletionResponse", body)
    assert r.headers["x-request-id"].startswith("req_")
    assert int(r.headers["openai-processing-ms"]) >= 0
    usage = body["usage"]
    assert usage["prompt_tokens"] == chat_prompt_tokens(O200K, messages)
    content = body["choices"][0]["message"]["content"]
    assert usage["completion_tokens"] == len(O200K.encode(content)) <= 60
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    finish = body["choices"][0]["finish_reason"]
    assert finish == ("length" if usage["completion_tokens"] == 60 else "stop")
    # sdk strict parsing
    resp = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=20)
    assert resp.object == "chat.completion" and resp.choices[0].message.role == "assistant"


def test_text_is_readable_english(client):
    resp = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                          max_tokens=200, seed=3)
    text = resp.choices[0].message.content
    assert text.isascii()
    sentences = [s for s in re.split(r"(?<=\.)\s+", text.strip()) if s]
    assert len(sentences) >= 2
    for s in sentences[:-1]:
        assert s[0].isupper() and s.endswith("."), s
    words = re.findall(r"[A-Za-z]+", text)
    assert sum(len(w) for w in words) / len(words) < 9  # words, not hashes


def test_max_tokens_is_an_exact_upper_bound(client):
    for limit in (1, 2, 7, 33):
        for _ in range(3):
            r = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Write a long essay."}],
                max_completion_tokens=limit)
            assert r.usage.completion_tokens <= limit
            assert r.usage.completion_tokens == len(O200K.encode(r.choices[0].message.content))
            if r.choices[0].finish_reason == "length":
                assert r.usage.completion_tokens == limit
            else:  # a natural end may land exactly on the limit too
                assert r.choices[0].finish_reason == "stop"


def test_ignore_eos_and_min_tokens(client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                       max_tokens=77, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 77 and r.choices[0].finish_reason == "length"
    for seed in range(5):
        r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                           max_tokens=400, seed=seed, extra_body={"min_tokens": 150})
        assert r.usage.completion_tokens >= 150


def test_seed_determinism_and_n_choices_differ(client):
    kw = dict(model=MODEL, messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=50, seed=42)
    a = client.chat.completions.create(**kw)
    b = client.chat.completions.create(**kw)
    assert a.choices[0].message.content == b.choices[0].message.content
    c = client.chat.completions.create(**{**kw, "seed": 43})
    assert c.choices[0].message.content != a.choices[0].message.content
    d = client.chat.completions.create(**{**kw, "messages": [{"role": "user", "content": "Tell me a joke"}]})
    assert d.choices[0].message.content != a.choices[0].message.content
    # no seed: each request differs
    texts = {client.chat.completions.create(**{k: v for k, v in kw.items() if k != "seed"})
             .choices[0].message.content for _ in range(3)}
    assert len(texts) == 3
    # n choices differ, and usage sums them
    r = client.chat.completions.create(**{**kw, "n": 3})
    contents = [ch.message.content for ch in r.choices]
    assert [ch.index for ch in r.choices] == [0, 1, 2]
    assert len(set(contents)) == 3
    assert r.usage.completion_tokens == sum(len(O200K.encode(t)) for t in contents)


def test_seed_reproduces_across_processes():
    from tests.server import run_server

    kw = dict(model=MODEL, messages=[{"role": "user", "content": "Describe a harbour"}], max_tokens=40, seed=7)
    outs = []
    for _ in range(2):
        with run_server("--ttft", "0", "--itl", "0") as s:
            outs.append(s.client().chat.completions.create(**kw).choices[0].message.content)
    assert outs[0] == outs[1]


def test_stop_sequences(client):
    kw = dict(model=MODEL, messages=[{"role": "user", "content": "Say something"}], max_tokens=120, seed=11)
    full = client.chat.completions.create(**kw).choices[0].message.content
    word = full.split()[5]
    cut = client.chat.completions.create(**kw, stop=[" " + word, "zzzz"])
    text = cut.choices[0].message.content
    assert text == full[: full.index(" " + word)]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < len(O200K.encode(full))


def test_streaming_framing_and_spec(server):
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 30,
               "stream": True, "stream_options": {"include_usage": True}, "seed": 5, "n": 2}
    with server.http() as http:
        r = http.post("/v1/chat/completions", json=payload)
        non_stream = http.post("/v1/chat/completions",
                               json={k: v for k, v in payload.items() if k not in ("stream", "stream_options")}).json()
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = [orjson.loads(e) for e in sse_events(r.content)[:-1]]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    assert len({c["id"] for c in chunks}) == 1
    assert len({c["created"] for c in chunks}) == 1
    *body, last = chunks
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == non_stream["usage"]["completion_tokens"]
    assert all(c["usage"] is None for c in body)
    for idx in (0, 1):
        mine = [c["choices"][0] for c in body if c["choices"][0]["index"] == idx]
        assert mine[0]["delta"]["role"] == "assistant"
        assert all("role" not in ch["delta"] for ch in mine[1:])
        text = "".join(ch["delta"].get("content") or "" for ch in mine)
        assert text == non_stream["choices"][idx]["message"]["content"]
        assert mine[-1]["finish_reason"] == non_stream["choices"][idx]["finish_reason"]
        assert all(ch["finish_reason"] is None for ch in mine[:-1])
        content_chunks = [ch for ch in mine if ch["delta"].get("content")]
        assert len(content_chunks) == len(O200K.encode(text))  # one token per chunk


def test_streaming_without_usage_has_no_usage_chunk(server):
    with server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": MODEL, "stream": True, "max_tokens": 5,
                                                    "messages": [{"role": "user", "content": "hi"}]})
    chunks = [orjson.loads(e) for e in sse_events(r.content)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_sdk_streaming_sync_and_async(server, client):
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=25, stream=True, stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            pieces.append(ch.delta.content or "")
    assert usage.completion_tokens == len(O200K.encode("".join(pieces))) <= 25

    async def run():
        ac = server.async_client()
        r = await ac.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=8)
        s = await ac.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                             max_tokens=8, stream=True)
        n = 0
        async for chunk in s:
            n += sum(1 for ch in chunk.choices if ch.delta.content)
        await ac.close()
        return r, n

    r, n = asyncio.run(run())
    assert r.usage.completion_tokens <= 8 and 1 <= n <= 8


def test_all_request_fields_accepted(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "s"},
                  {"role": "user", "content": [{"type": "text", "text": "part one"}]},
                  {"role": "assistant", "content": None,
                   "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "result"}],
        max_tokens=10, temperature=0.7, top_p=0.9, frequency_penalty=0.5, presence_penalty=-0.5,
        logit_bias={"50256": -100}, user="u1", metadata={"k": "v"}, store=False, service_tier="auto",
        parallel_tool_calls=True, prompt_cache_key="pk", safety_identifier="sid", verbosity="low",
        extra_body={"top_k": 40, "repetition_penalty": 1.1, "min_p": 0.05})
    assert r.choices[0].message.content


def test_context_length_exceeded(client):
    import openai

    big = "word " * 20000
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": big}])
    assert e.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                       max_tokens=128_000)
    assert e.value.code == "context_length_exceeded" and "128000" in e.value.message


def test_client_disconnect_frees_the_slot():
    from tests.server import run_server, wait_for

    with run_server("--ttft", "0", "--itl", "200") as s, s.http() as http:
        with httpx.Client(base_url=s.base_url) as c:
            with c.stream("POST", "/v1/chat/completions", json={
                    "model": MODEL, "stream": True, "max_tokens": 500,
                    "messages": [{"role": "user", "content": "hi"}]}) as r:
                it = r.iter_lines()
                next(it)
                assert http.get("/health").json()["running"] == 1
            # leaving the block closes the connection mid-stream
        assert wait_for(lambda: http.get("/health").json()["running"] == 0, timeout=5)
