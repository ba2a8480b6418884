"""The legacy ``POST /v1/completions`` endpoint, driven through the official SDK and raw httpx.

Token counts are checked against the model's real tokenizer (gpt-3.5-turbo-instruct uses
cl100k_base, see fakeai/registry/catalog.toml). Seeded requests make every generation-
dependent check deterministic.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import spec_available, validate

MODEL = "gpt-3.5-turbo-instruct"
TOK = get_tokenizer("cl100k_base")
PATH = "/v1/completions"
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def ntok(text: str) -> int:
    return len(TOK.encode(text))


def validate_response(body: dict) -> None:
    if spec_available():
        validate("CreateCompletionResponse", body)


def create_raw(client: openai.OpenAI, **kw) -> tuple[dict, object]:
    """(raw JSON body, SDK-parsed Completion) of one non-streaming call."""
    extensions = {k: kw.pop(k) for k in ("ignore_eos", "min_tokens") if k in kw}  # vLLM/NIM fields
    r = client.completions.with_raw_response.create(model=MODEL, extra_body=extensions or None, **kw)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return json.loads(r.text), r.parse()


def check_choice(choice: dict, max_tokens: int) -> int:
    """Token count of a (non-echo) choice; asserts the finish_reason rule."""
    n = ntok(choice["text"])
    assert 0 < n <= max_tokens, (n, max_tokens, choice)
    assert choice["finish_reason"] == ("length" if n == max_tokens else "stop"), (n, max_tokens, choice)
    assert choice["logprobs"] is None
    return n


def sse_events(resp: httpx.Response) -> list[str]:
    """The payloads of a raw SSE body's ``data:`` lines, checking the framing."""
    assert resp.status_code == 200, resp.read()
    assert resp.headers["content-type"].startswith("text/event-stream")
    payloads = []
    for line in resp.iter_lines():
        if not line:
            continue
        assert line.startswith("data: "), line
        payloads.append(line[len("data: "):])
    assert payloads and payloads[-1] == "[DONE]", payloads[-3:]
    assert "[DONE]" not in payloads[:-1]
    return payloads[:-1]


def stream_json(http: httpx.Client, body: dict) -> list[dict]:
    with http.stream("POST", PATH, json={"model": MODEL, "stream": True, **body}) as r:
        payloads = sse_events(r)
    return [json.loads(p) for p in payloads]  # every data line but [DONE] must be JSON


def validate_stream_chunk(chunk: dict) -> None:
    """Validate what the spec can validate of a streamed chunk.

    The spec has no separate legacy stream-chunk schema: CreateCompletionResponse says the
    streamed and non-streamed objects share one shape, yet it declares `finish_reason` a
    non-nullable enum and `usage` a non-nullable CompletionUsage, while streaming (like OpenAI's
    own) sends `finish_reason: null` on content chunks and `usage: null` on every chunk but the
    last when include_usage is on. So only chunks with a non-null finish_reason, and the final
    usage chunk (choices: []), are validated, with a null `usage` dropped first.
    """
    if chunk["choices"] and any(c["finish_reason"] is None for c in chunk["choices"]):
        return
    if chunk.get("usage", ...) is None:
        chunk = {k: v for k, v in chunk.items() if k != "usage"}
    validate_response(chunk)


@pytest.fixture(scope="module")
def http(server):
    with server.http() as h:
        yield h


# --------------------------------------------------------------------------- non-streaming
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("max_tokens", [6, 48, 1000])
def test_string_prompt(client, seed, max_tokens):
    body, parsed = create_raw(client, prompt=PROMPT, max_tokens=max_tokens, seed=seed)
    validate_response(body)
    assert body["object"] == "text_completion"
    assert body["id"].startswith("cmpl-")
    assert body["model"] == MODEL
    assert len(body["choices"]) == 1 and body["choices"][0]["index"] == 0
    n = check_choice(body["choices"][0], max_tokens)
    usage = body["usage"]
    assert usage["prompt_tokens"] == ntok(PROMPT)
    assert usage["completion_tokens"] == n
    assert usage["total_tokens"] == usage["prompt_tokens"] + n
    # the SDK parses the same document
    assert parsed.id == body["id"] and parsed.choices[0].text == body["choices"][0]["text"]
    assert parsed.usage.completion_tokens == n


def test_finish_reasons_both_occur(client):
    # The rule in check_choice is only meaningful if both branches are exercised.
    short, _ = create_raw(client, prompt=PROMPT, max_tokens=3, seed=5)
    long_, _ = create_raw(client, prompt=PROMPT, max_tokens=2000, seed=5)
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 3
    assert long_["choices"][0]["finish_reason"] == "stop"
    assert long_["usage"]["completion_tokens"] < 2000


def test_list_of_prompts_times_n(client):
    prompts = ["The sea at night", "A mountain range far away from any city", "Quantum computers"]
    n = 2
    body, _ = create_raw(client, prompt=prompts, n=n, max_tokens=12, seed=11)
    validate_response(body)
    choices = body["choices"]
    assert len(choices) == len(prompts) * n
    assert [c["index"] for c in choices] == list(range(len(prompts) * n))
    total = sum(check_choice(c, 12) for c in choices)
    assert body["usage"]["prompt_tokens"] == sum(ntok(p) for p in prompts)
    assert body["usage"]["completion_tokens"] == total


def test_list_of_prompts_is_prompt_major(client):
    # echo makes each choice name its prompt: index i belongs to prompt i // n.
    prompts = ["Alpha centauri", "Bravo company marched", "Charlie's garden"]
    n = 2
    plain, _ = create_raw(client, prompt=prompts, n=n, max_tokens=8, seed=12)
    echoed, _ = create_raw(client, prompt=prompts, n=n, max_tokens=8, seed=12, echo=True)
    assert len(echoed["choices"]) == len(prompts) * n
    for i, c in enumerate(echoed["choices"]):
        assert c["index"] == i
        assert c["text"].startswith(prompts[i // n]), (i, c["text"])
        # echo only prepends the prompt: the generated part is the same seeded text
        assert c["text"] == prompts[i // n] + plain["choices"][i]["text"]
    assert echoed["usage"] == plain["usage"]  # echoed prompt text is not billed as completion


def test_token_array_prompt(client):
    ids = TOK.encode("Once upon a time, in a land far away")
    body, _ = create_raw(client, prompt=ids, max_tokens=10, seed=3)
    validate_response(body)
    assert len(body["choices"]) == 1
    assert body["usage"]["prompt_tokens"] == len(ids)
    assert body["usage"]["completion_tokens"] == check_choice(body["choices"][0], 10)


def test_list_of_token_arrays(client):
    arrays = [TOK.encode("First prompt here"), TOK.encode("And a second, rather longer, prompt"), [100257]]
    body, _ = create_raw(client, prompt=arrays, max_tokens=10, seed=3, echo=True)
    validate_response(body)
    assert len(body["choices"]) == len(arrays)
    assert body["usage"]["prompt_tokens"] == sum(len(a) for a in arrays)
    for c, a in zip(body["choices"], arrays):
        assert c["text"].startswith(TOK.decode(a))


@pytest.mark.parametrize("bad", [[TOK.n_vocab], [-1], [1, 2, 10**9]])
def test_out_of_vocab_token_is_400(client, bad):
    with pytest.raises(openai.BadRequestError) as ei:
        client.completions.create(model=MODEL, prompt=bad, max_tokens=2)
    err = ei.value.response.json()["error"]
    assert err["param"] == "prompt" and err["type"] == "invalid_request_error"


def test_out_of_vocab_in_list_of_arrays_is_400(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.completions.create(model=MODEL, prompt=[[1, 2], [TOK.n_vocab + 5]], max_tokens=2)
    assert ei.value.param == "prompt"


# Token ids inside a vocabulary's holes (e.g. cl100k_base 100256) currently crash the server:
# see test_errors.py::test_token_id_in_a_vocabulary_hole_is_400 (run on a server whose log is drained).


def test_echo_prepends_the_prompt(client):
    plain, _ = create_raw(client, prompt=PROMPT, max_tokens=20, seed=8)
    echoed, _ = create_raw(client, prompt=PROMPT, max_tokens=20, seed=8, echo=True)
    validate_response(echoed)
    text = echoed["choices"][0]["text"]
    assert text.startswith(PROMPT)
    assert len(text) > len(PROMPT)
    assert text[len(PROMPT):] == plain["choices"][0]["text"]
    assert echoed["usage"]["prompt_tokens"] == ntok(PROMPT)
    assert echoed["usage"]["completion_tokens"] == ntok(text[len(PROMPT):])


def test_max_tokens_zero_with_echo_returns_just_the_prompt(client):
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=0, echo=True)
    validate_response(body)
    (c,) = body["choices"]
    assert c["text"] == PROMPT
    assert c["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": ntok(PROMPT), "completion_tokens": 0,
                             "total_tokens": ntok(PROMPT)}


def test_max_tokens_zero_with_echo_token_arrays(client):
    arrays = [TOK.encode("Scoring this sentence"), TOK.encode("and this one")]
    body, _ = create_raw(client, prompt=arrays, max_tokens=0, echo=True)
    assert [c["text"] for c in body["choices"]] == [TOK.decode(a) for a in arrays]
    assert body["usage"]["completion_tokens"] == 0
    assert body["usage"]["prompt_tokens"] == sum(map(len, arrays))


def test_echo_with_logprobs_scores_the_prompt_too(client, http):
    # found by fuzzing: with echo the logprobs covered only the completion, not the echoed text
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=12, seed=5, echo=True, logprobs=2)
    validate_response(body)
    (c,) = body["choices"]
    lp, ids = c["logprobs"], TOK.encode(PROMPT)
    assert "".join(lp["tokens"]) == c["text"]
    assert lp["tokens"][:len(ids)] == [TOK.decode([t]) for t in ids]
    assert all(x < 0 for x in lp["token_logprobs"]) and all(len(t) == 2 for t in lp["top_logprobs"])
    assert lp["text_offset"] == [sum(len(t) for t in lp["tokens"][:i]) for i in range(len(lp["tokens"]))]
    assert len(lp["tokens"]) == len(ids) + body["usage"]["completion_tokens"]
    again, _ = create_raw(client, prompt=PROMPT, max_tokens=12, seed=6, echo=True, logprobs=2)
    assert again["choices"][0]["logprobs"]["token_logprobs"][:len(ids)] == lp["token_logprobs"][:len(ids)]
    chunks = stream_json(http, {"prompt": PROMPT, "max_tokens": 12, "seed": 5, "echo": True, "logprobs": 2})
    streamed = [t for ch in chunks for x in ch["choices"] if x["logprobs"] for t in x["logprobs"]["tokens"]]
    assert streamed == lp["tokens"]
    # max_tokens=0: the prompt scored, nothing generated (how evaluation harnesses score text)
    zero, _ = create_raw(client, prompt=PROMPT, max_tokens=0, echo=True, logprobs=0)
    assert zero["choices"][0]["logprobs"]["tokens"] == lp["tokens"][:len(ids)]


# --------------------------------------------------------------------------- best_of
def test_best_of_bills_every_candidate(client):
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=30, best_of=3, n=1, seed=21)
    validate_response(body)
    assert len(body["choices"]) == 1
    returned = check_choice(body["choices"][0], 30)
    billed = body["usage"]["completion_tokens"]
    assert billed >= returned + 2  # two losers, at least one token each, are billed too
    assert billed <= 3 * 30
    # the three candidates are what n=3 returns for the same seed: billing is their sum
    three, _ = create_raw(client, prompt=PROMPT, max_tokens=30, n=3, seed=21)
    assert billed == three["usage"]["completion_tokens"] == sum(ntok(c["text"]) for c in three["choices"])


def test_best_of_with_n_and_several_prompts(client):
    prompts = ["Rivers", "Deserts of the south"]
    body, _ = create_raw(client, prompt=prompts, max_tokens=10, best_of=3, n=2, seed=4)
    assert len(body["choices"]) == 4
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    returned = sum(check_choice(c, 10) for c in body["choices"])
    assert body["usage"]["completion_tokens"] >= returned + 2  # one loser per prompt
    assert body["usage"]["prompt_tokens"] == sum(map(ntok, prompts))


def test_best_of_smaller_than_n_is_400(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.completions.create(model=MODEL, prompt="hi", max_tokens=2, n=3, best_of=2)
    assert ei.value.param == "best_of"


def test_best_of_greater_than_n_with_stream_is_400(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.completions.create(model=MODEL, prompt="hi", max_tokens=2, n=1, best_of=2, stream=True)
    assert ei.value.param == "best_of"


def test_best_of_equal_to_n_may_stream(client):
    chunks = list(client.completions.create(model=MODEL, prompt="hi", max_tokens=4, n=2, best_of=2,
                                            stream=True))
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}


# --------------------------------------------------------------------------- seed
def test_same_seed_same_text(client):
    a, _ = create_raw(client, prompt=PROMPT, max_tokens=40, n=2, seed=77)
    b, _ = create_raw(client, prompt=PROMPT, max_tokens=40, n=2, seed=77)
    texts = [c["text"] for c in a["choices"]]
    assert texts == [c["text"] for c in b["choices"]]
    assert texts[0] != texts[1]  # the n choices of one request differ
    assert a["id"] != b["id"]


def test_different_seeds_different_text(client):
    texts = {create_raw(client, prompt=PROMPT, max_tokens=40, seed=s)[0]["choices"][0]["text"]
             for s in (100, 101, 102)}
    assert len(texts) == 3


def test_unseeded_requests_differ(client):
    texts = {create_raw(client, prompt=PROMPT, max_tokens=40)[0]["choices"][0]["text"] for _ in range(3)}
    assert len(texts) == 3


# --------------------------------------------------------------------------- stop
@pytest.mark.parametrize("seed", [31, 32])
def test_stop_sequence_cuts_the_text(client, seed):
    base, _ = create_raw(client, prompt=PROMPT, max_tokens=80, seed=seed)
    text = base["choices"][0]["text"]
    # a word from the second half of the unstopped output
    words = [w for w in text[len(text) // 2:].split() if w.isalpha() and len(w) >= 4]
    assert words, text
    stop = " " + words[0]
    cut = text.find(stop)
    assert cut > 0
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=80, seed=seed, stop=[stop, "\u2603never\u2603"])
    validate_response(body)
    (c,) = body["choices"]
    assert c["text"] == text[:cut]
    assert stop not in c["text"]
    assert c["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == ntok(c["text"]) < base["usage"]["completion_tokens"]


def test_stop_sequence_absent_from_output_changes_nothing(client):
    base, _ = create_raw(client, prompt=PROMPT, max_tokens=30, seed=41)
    stopped, _ = create_raw(client, prompt=PROMPT, max_tokens=30, seed=41, stop="\u2603")
    assert stopped["choices"][0]["text"] == base["choices"][0]["text"]
    assert stopped["choices"][0]["finish_reason"] == base["choices"][0]["finish_reason"]


# --------------------------------------------------------------------------- streaming
def test_sdk_stream_matches_non_streaming(client):
    kw = dict(model=MODEL, prompt=PROMPT, max_tokens=40, seed=51)
    full = client.completions.create(**kw)
    chunks = list(client.completions.create(stream=True, **kw))
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].id.startswith("cmpl-") and chunks[0].id != full.id
    assert all(c.object == "text_completion" and c.model == MODEL for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == full.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [full.choices[0].finish_reason]
    assert chunks[-1].choices[0].finish_reason is not None


@pytest.mark.parametrize("echo", [False, True])
def test_raw_sse_stream(http, echo):
    body = {"prompt": PROMPT, "max_tokens": 25, "seed": 52, "echo": echo}
    full = http.post(PATH, json={"model": MODEL, **body}).json()
    chunks = stream_json(http, body)
    assert len({c["id"] for c in chunks}) == 1
    for c in chunks:
        assert c["object"] == "text_completion"
        assert "usage" not in c or c["usage"] is None
        validate_stream_chunk(c)
    assert "".join(c["choices"][0]["text"] for c in chunks) == full["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == full["choices"][0]["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_raw_sse_stream_with_usage(http):
    body = {"prompt": PROMPT, "max_tokens": 30, "seed": 53, "stream_options": {"include_usage": True}}
    chunks = stream_json(http, body)
    *content, last = chunks
    assert last["choices"] == []
    usage = last["usage"]
    validate_stream_chunk(last)
    assert all(c["usage"] is None for c in content)
    text_chunks = [c for c in content if c["choices"][0]["text"]]
    text = "".join(c["choices"][0]["text"] for c in text_chunks)
    assert usage["completion_tokens"] == len(text_chunks) == ntok(text)
    assert usage["prompt_tokens"] == ntok(PROMPT)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    for c in content:
        validate_stream_chunk(c)
    assert len({c["id"] for c in chunks}) == 1


def test_stream_several_prompts_and_n(http):
    prompts = ["Gardens in spring", "The history of clocks"]
    body = {"prompt": prompts, "n": 2, "max_tokens": 15, "seed": 54}
    full = http.post(PATH, json={"model": MODEL, **body}).json()
    chunks = stream_json(http, {**body, "stream_options": {"include_usage": True}})
    *content, last = chunks
    per_index: dict[int, str] = {}
    finishes: dict[int, list] = {}
    for c in content:
        (ch,) = c["choices"]
        per_index[ch["index"]] = per_index.get(ch["index"], "") + ch["text"]
        if ch["finish_reason"] is not None:
            finishes.setdefault(ch["index"], []).append(ch["finish_reason"])
    assert per_index == {c["index"]: c["text"] for c in full["choices"]}
    assert finishes == {c["index"]: [c["finish_reason"]] for c in full["choices"]}
    assert last["usage"]["completion_tokens"] == full["usage"]["completion_tokens"]
    assert last["usage"]["prompt_tokens"] == full["usage"]["prompt_tokens"] == sum(map(ntok, prompts))


def test_sdk_stream_with_usage(client):
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=20, seed=55, stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    n_text = sum(1 for c in chunks if c.choices and c.choices[0].text)
    assert chunks[-1].usage.completion_tokens == n_text
    assert all(c.usage is None for c in chunks[:-1])


# --------------------------------------------------------------------------- length controls
def _natural(client, seed: int) -> int:
    """Completion tokens of a seeded request that ends on its own (control)."""
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=1500, seed=seed)
    assert body["choices"][0]["finish_reason"] == "stop", body["usage"]
    return body["usage"]["completion_tokens"]


def test_ignore_eos_fills_max_tokens(client):
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=50, ignore_eos=True)
    assert body["usage"]["completion_tokens"] == 50 == ntok(body["choices"][0]["text"])
    assert body["choices"][0]["finish_reason"] == "length"


def test_ignore_eos_goes_past_the_natural_end(client):
    natural = _natural(client, 61)
    target = natural + 50
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=target, seed=61, ignore_eos=True)
    assert body["usage"]["completion_tokens"] == target == ntok(body["choices"][0]["text"])
    assert body["choices"][0]["finish_reason"] == "length"


def test_min_tokens_is_respected(client):
    natural = _natural(client, 62)
    minimum = natural + 30
    body, _ = create_raw(client, prompt=PROMPT, max_tokens=1500, seed=62, min_tokens=minimum)
    n = body["usage"]["completion_tokens"]
    assert n == ntok(body["choices"][0]["text"])
    assert minimum <= n < 1500
    assert body["choices"][0]["finish_reason"] == "stop"


def test_min_tokens_above_max_tokens_is_400(client):
    # as vLLM: min_tokens may not exceed max_tokens
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=20, extra_body={"min_tokens": 100})
    assert e.value.body["param"] == "min_tokens"


# --------------------------------------------------------------------------- async
def test_async_client(server):
    async def go():
        async with server.async_client() as ac:
            return await ac.completions.create(model=MODEL, prompt=PROMPT, max_tokens=12, seed=71)

    resp = asyncio.run(go())
    assert resp.object == "text_completion" and len(resp.choices) == 1
    assert resp.usage.prompt_tokens == ntok(PROMPT)
    assert resp.usage.completion_tokens == ntok(resp.choices[0].text) <= 12
