"""Fuzzing the clients' view: random but valid mixes of chat completions, completions, responses
and embeddings, fired concurrently through the official ``openai.AsyncOpenAI``.

Every generating request is sent twice with the same ``seed``, once streamed and once not: a
seeded request gives the same text whatever only frames or truncates it (``stream``,
``stream_options``; fakeai.api.common ``_NOT_SEEDED``, docs/responses.md), so the assembled stream
must equal the JSON answer. Per request: the SDK parses it, a stream ends properly (``[DONE]``,
read from the raw bytes; a response's terminal event), usage stays within the token limit and
agrees with the chunks and logprobs, forced tool calls carry JSON arguments that fit their
function, and structured outputs validate against their schema.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from array import array

import httpx
import jsonschema
import openai

SEED = 20240611
CASES = 130  # seeded twins (stream + JSON): 260 requests, plus 24 embeddings
CONCURRENCY = 16

_WORDS = ("owls rivers harbor winter physics recipe garden orbit violin market bridge lantern "
          "glacier teapot archive compass").split()
_FUNCTIONS = [
    {"name": "get_weather", "description": "Weather forecast for a city.", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"},
                                         "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"], "additionalProperties": False}},
    {"name": "book_table", "description": "Reserve a restaurant table.", "parameters": {
        "type": "object", "properties": {"restaurant": {"type": "string"},
                                         "guests": {"type": "integer", "minimum": 1, "maximum": 12},
                                         "time": {"type": "string", "enum": ["18:00", "19:30", "21:00"]},
                                         "notes": {"type": ["string", "null"]}},
        "required": ["restaurant", "guests", "time", "notes"], "additionalProperties": False}},
    {"name": "search_docs", "description": "Search the documentation.", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"},
                                         "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
        "required": ["query", "tags"], "additionalProperties": False}},
]
_SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "object", "properties": {
        "title": {"type": "string"}, "rating": {"type": "number", "minimum": 0, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["new", "used", "refurbished"]}},
        "seller": {"type": "object", "properties": {"id": {"type": "integer"}, "verified": {"type": "boolean"}},
                   "required": ["id", "verified"], "additionalProperties": False}},
     "required": ["title", "rating", "tags", "seller"], "additionalProperties": False},
]
_REASONING = {"o4-mini", "Qwen/Qwen3-8B"}


# -- raw bytes of each response, seen under the SDK --------------------------------------------

class Tee(httpx.AsyncBaseTransport):
    """Records the raw body of every response to a request carrying ``x-fuzz-id``."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.raw: dict[str, bytearray] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        key = request.headers.get("x-fuzz-id")
        if key is None:
            return response
        buf = self.raw[key] = bytearray()
        inner = response.stream

        class Recorded(httpx.AsyncByteStream):
            async def __aiter__(self):
                async for chunk in inner:
                    buf.extend(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await inner.aclose()

        return httpx.Response(response.status_code, headers=response.headers, stream=Recorded(),
                              extensions=response.extensions, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- random valid requests ----------------------------------------------------------------------

def _sentence(rng: random.Random, extra: str = "") -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 12))) + extra


def chat_request(rng: random.Random) -> dict:
    model = rng.choice(["gpt-4o-mini", "gpt-4.1-nano", "meta-llama/Llama-3.1-8B-Instruct", *_REASONING])
    kw: dict = {"model": model, "seed": rng.randrange(2**31)}
    fmt = rng.choices(["text", "json_schema", "json_object"], [6, 2, 1])[0]
    kw["messages"] = [{"role": "user", "content": _sentence(rng, " Answer in JSON." if fmt == "json_object" else "")}]
    if rng.random() < 0.3:
        kw["messages"].insert(0, {"role": "system", "content": _sentence(rng)})
    limit = rng.randint(16, 300) if model in _REASONING else rng.randint(1, 80)
    kw["max_completion_tokens" if model == "o4-mini" or rng.random() < 0.5 else "max_tokens"] = limit
    if fmt == "json_schema":
        kw["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": rng.choice(_SCHEMAS), "strict": rng.random() < 0.7}}
    elif fmt == "json_object":
        kw["response_format"] = {"type": "json_object"}
    if rng.random() < 0.35:
        fns = rng.sample(_FUNCTIONS, rng.randint(1, len(_FUNCTIONS)))
        strict = rng.random() < 0.5
        kw["tools"] = [{"type": "function", "function": {**f, "strict": strict}} for f in fns]
        choice = rng.choice(["auto", "required", "none", "named"])
        kw["tool_choice"] = ({"type": "function", "function": {"name": rng.choice(fns)["name"]}}
                             if choice == "named" else choice)
        if rng.random() < 0.5:
            kw["parallel_tool_calls"] = rng.random() < 0.5
    elif rng.random() < 0.4:
        kw["n"] = rng.randint(2, 3)
    if rng.random() < 0.3:
        kw["stop"] = rng.sample(["the", ".", " and", "\n", ","], rng.randint(1, 2))
    if model not in _REASONING and rng.random() < 0.35:
        kw["logprobs"] = True
        if rng.random() < 0.7:
            kw["top_logprobs"] = rng.randint(0, 5)
    if rng.random() < 0.3:
        kw["temperature"] = round(rng.uniform(0, 2), 2)
    return kw


def completion_request(rng: random.Random) -> dict:
    kw: dict = {"model": rng.choice(["gpt-3.5-turbo-instruct", "gpt-4o-mini"]), "seed": rng.randrange(2**31),
                "max_tokens": rng.randint(1, 50),
                "prompt": _sentence(rng) if rng.random() < 0.7 else [_sentence(rng) for _ in range(2)]}
    if rng.random() < 0.4:
        kw["n"] = rng.randint(2, 3)
    if rng.random() < 0.3:
        kw["stop"] = rng.choice(["the", ".", ["\n", " a "]])
    if rng.random() < 0.35:
        kw["logprobs"] = rng.randint(0, 4)
    if rng.random() < 0.2:
        kw["echo"] = True
    return kw


def responses_request(rng: random.Random) -> dict:
    model = rng.choice(["gpt-4o-mini", "gpt-4.1-nano", "o4-mini"])
    kw: dict = {"model": model, "input": _sentence(rng), "extra_body": {"seed": rng.randrange(2**31)},
                "max_output_tokens": rng.randint(16, 300 if model == "o4-mini" else 80)}
    if rng.random() < 0.3:
        kw["instructions"] = _sentence(rng)
    if rng.random() < 0.25:
        kw["text"] = {"format": {"type": "json_schema", "name": "answer", "schema": rng.choice(_SCHEMAS),
                                 "strict": True}}
    elif rng.random() < 0.3:
        fn = rng.choice(_FUNCTIONS)
        kw["tools"] = [{"type": "function", "name": fn["name"], "description": fn["description"],
                        "parameters": fn["parameters"], "strict": True}]
        kw["tool_choice"] = rng.choice(["auto", "required", {"type": "function", "name": fn["name"]}])
    return kw


def embedding_request(rng: random.Random) -> dict:
    kw: dict = {"model": rng.choice(["text-embedding-3-small", "text-embedding-ada-002", "nvidia/nv-embedqa-e5-v5"]),
                "input": _sentence(rng) if rng.random() < 0.5 else [_sentence(rng) for _ in range(rng.randint(1, 4))]}
    if kw["model"] == "text-embedding-3-small" and rng.random() < 0.5:
        kw["dimensions"] = rng.choice([64, 256, 512])
    if rng.random() < 0.5:
        kw["encoding_format"] = rng.choice(["float", "base64"])
    if kw["model"].startswith("nvidia/"):
        kw["extra_body"] = {"input_type": rng.choice(["query", "passage"])}
    return kw


def cases(rng: random.Random) -> list[tuple[str, dict, bool]]:
    """(kind, request, include_usage in the stream twin), in a seeded random mix."""
    makers = {"chat": chat_request, "completion": completion_request, "response": responses_request}
    kinds = rng.choices(list(makers), [5, 2, 3], k=CASES)
    return [(k, makers[k](rng), rng.random() < 0.6) for k in kinds]


# -- checks ---------------------------------------------------------------------------------------

def _max_tokens(kw: dict) -> int:
    return kw.get("max_completion_tokens") or kw["max_tokens"]


def _forced(kw: dict) -> str | None:
    """The function a request forces ('*' for any), or None."""
    tc = kw.get("tool_choice")
    if not kw.get("tools") or tc in (None, "auto", "none"):
        return None
    if tc == "required":
        return "*"
    return tc.get("name") or tc["function"]["name"]


def _check_call(name: str, arguments: str, kw: dict, problems: list[str], where: str) -> None:
    params = {t.get("name") or t["function"]["name"]: t.get("parameters") or t["function"]["parameters"]
              for t in kw["tools"]}
    if name not in params:
        problems.append(f"{where}: called {name!r}, not one of the tools")
        return
    try:
        jsonschema.validate(json.loads(arguments), params[name])
    except (ValueError, jsonschema.ValidationError) as e:
        problems.append(f"{where}: arguments of {name} {arguments!r} do not fit its parameters: {e}")


def _check_output(text: str | None, kw: dict, schema: dict | None, json_object: bool, problems: list[str],
                  where: str) -> None:
    try:
        if schema is not None:
            jsonschema.validate(json.loads(text or ""), schema)
        elif json_object and not isinstance(json.loads(text or ""), dict):
            problems.append(f"{where}: json_object output is not an object: {text!r}")
    except (ValueError, jsonschema.ValidationError) as e:
        problems.append(f"{where}: structured output {text!r} does not validate: {e}")


def _done(raw: bytes, problems: list[str], where: str) -> None:
    if not raw.endswith(b"data: [DONE]\n\n"):
        problems.append(f"{where}: the stream does not end with [DONE]: ...{bytes(raw[-120:])!r}")


async def chat_twin(client, tee: Tee, key: str, kw: dict, include_usage: bool, problems: list[str]) -> None:
    n = kw.get("n", 1)
    body = await client.chat.completions.create(**kw)
    stream = await client.chat.completions.create(**kw, stream=True, stream_options={"include_usage": include_usage},
                                                  extra_headers={"x-fuzz-id": key})
    texts: dict[int, str] = {}
    calls: dict[int, dict[int, list[str]]] = {}
    logprobs: dict[int, list] = {}
    finish: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.index in finish:
                problems.append(f"stream: choice {ch.index} continues after its finish_reason")
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            for t in ch.delta.tool_calls or ():
                entry = calls.setdefault(ch.index, {}).setdefault(t.index, ["", ""])
                entry[0] += t.function.name or ""
                entry[1] += t.function.arguments or ""
            if ch.logprobs is not None and ch.logprobs.content:
                logprobs.setdefault(ch.index, []).extend(ch.logprobs.content)
            if ch.finish_reason is not None:
                finish[ch.index] = ch.finish_reason
    _done(tee.raw[key], problems, "stream")
    if len(body.choices) != n or sorted(finish) != list(range(n)):
        problems.append(f"{len(body.choices)} choices, stream finished {sorted(finish)}, for n={n}")
        return
    u = body.usage
    if u.completion_tokens > n * _max_tokens(kw):
        problems.append(f"usage.completion_tokens {u.completion_tokens} > n * max tokens {n * _max_tokens(kw)}")
    if include_usage and (usage is None or (usage.prompt_tokens, usage.completion_tokens)
                          != (u.prompt_tokens, u.completion_tokens)):
        problems.append(f"stream usage {usage} != JSON usage {u}")
    rf = kw.get("response_format") or {}
    schema = rf.get("json_schema", {}).get("schema")
    forced = _forced(kw)
    returned = 0
    for i, c in enumerate(body.choices):
        where = f"choice {i}"
        got_calls = [[t.function.name, t.function.arguments] for t in c.message.tool_calls or ()]
        if (texts.get(i, ""), finish[i]) != (c.message.content or "", c.finish_reason):
            problems.append(f"{where}: stream {texts.get(i, '')!r} ({finish[i]}) != JSON {c.message.content!r} "
                            f"({c.finish_reason})")
        if [v for _, v in sorted(calls.get(i, {}).items())] != got_calls:
            problems.append(f"{where}: streamed tool calls {calls.get(i)} != JSON {got_calls}")
        if kw.get("logprobs"):
            lp = c.logprobs.content if c.logprobs else []
            returned += len(lp)
            if [t.token for t in lp] != [t.token for t in logprobs.get(i, [])]:
                problems.append(f"{where}: streamed logprobs differ from the JSON answer's")
            if not got_calls and "".join(t.token for t in lp) != (c.message.content or ""):
                problems.append(f"{where}: the logprobs' tokens do not spell the content")
            if any(len(t.top_logprobs) != kw.get("top_logprobs", 0) for t in lp):
                problems.append(f"{where}: top_logprobs entries are not {kw.get('top_logprobs', 0)} long")
        if forced and c.finish_reason != "length":
            if c.finish_reason != "tool_calls" or not got_calls:
                problems.append(f"{where}: tool_choice {kw['tool_choice']} but finish {c.finish_reason}, no calls")
            if forced != "*" and any(name != forced for name, _ in got_calls):
                problems.append(f"{where}: forced {forced} but called {[n for n, _ in got_calls]}")
        if c.finish_reason == "tool_calls" or (got_calls and c.finish_reason == "stop"):
            for name, arguments in got_calls:
                _check_call(name, arguments, kw, problems, where)
        if c.finish_reason == "stop" and not got_calls and rf and "stop" not in kw:  # a stop sequence cuts JSON
            _check_output(c.message.content, kw, schema, rf.get("type") == "json_object", problems, where)
    reasoning = u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else 0
    if kw.get("logprobs") and not any(c.message.tool_calls for c in body.choices) \
            and returned != u.completion_tokens - reasoning:
        problems.append(f"{returned} logprobs entries for {u.completion_tokens - reasoning} completion tokens")


async def completion_twin(client, tee: Tee, key: str, kw: dict, include_usage: bool, problems: list[str]) -> None:
    n = kw.get("n", 1) * (len(kw["prompt"]) if isinstance(kw["prompt"], list) else 1)
    body = await client.completions.create(**kw)
    stream = await client.completions.create(**kw, stream=True, stream_options={"include_usage": include_usage},
                                             extra_headers={"x-fuzz-id": key})
    texts: dict[int, str] = {}
    tokens: dict[int, list[str]] = {}
    finish: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            texts[ch.index] = texts.get(ch.index, "") + ch.text
            if ch.logprobs is not None and ch.logprobs.tokens:
                tokens.setdefault(ch.index, []).extend(ch.logprobs.tokens)
            if ch.finish_reason is not None:
                finish[ch.index] = ch.finish_reason
    _done(tee.raw[key], problems, "stream")
    if len(body.choices) != n or sorted(finish) != list(range(n)):
        problems.append(f"{len(body.choices)} choices, stream finished {sorted(finish)}, for {n} expected")
        return
    u = body.usage
    if u.completion_tokens > n * kw["max_tokens"]:
        problems.append(f"usage.completion_tokens {u.completion_tokens} > {n} x max_tokens {kw['max_tokens']}")
    if include_usage and (usage is None or (usage.prompt_tokens, usage.completion_tokens)
                          != (u.prompt_tokens, u.completion_tokens)):
        problems.append(f"stream usage {usage} != JSON usage {u}")
    returned = 0
    for c in body.choices:
        i = c.index
        if (texts.get(i, ""), finish[i]) != (c.text, c.finish_reason):
            problems.append(f"choice {i}: stream {texts.get(i, '')!r} ({finish[i]}) != JSON {c.text!r} ({c.finish_reason})")
        if kw.get("logprobs") is not None:
            got = c.logprobs.tokens if c.logprobs else []
            returned += len(got)
            if got != tokens.get(i, []):
                problems.append(f"choice {i}: streamed logprobs tokens differ from the JSON answer's")
            if "".join(got) != c.text:
                problems.append(f"choice {i}: the logprobs' tokens do not spell the text")
    if kw.get("logprobs") is not None and not kw.get("echo") and returned != u.completion_tokens:
        problems.append(f"{returned} logprobs tokens for {u.completion_tokens} completion tokens")


def _response_calls(r) -> list[list[str]]:
    return [[o.name, o.arguments] for o in r.output if o.type == "function_call"]


async def response_twin(client, tee: Tee, key: str, kw: dict, _: bool, problems: list[str]) -> None:
    body = await client.responses.create(**kw)
    stream = await client.responses.create(**kw, stream=True, extra_headers={"x-fuzz-id": key})
    deltas, final, last = "", None, None
    async for event in stream:
        last = event.type
        if event.type == "response.output_text.delta":
            deltas += event.delta
        if event.type in ("response.completed", "response.incomplete", "response.failed"):
            final = event.response
    if last not in ("response.completed", "response.incomplete") or final is None:
        problems.append(f"stream: last event {last}, not response.completed / response.incomplete")
        return
    tail = bytes(tee.raw[key]).split(b"\n\n")
    if tail[-1] or not tail[-2].startswith(f"event: {last}\n".encode()):
        problems.append(f"stream: the raw stream does not end with its {last} event: ...{tail[-2][:80]!r}")
    if (final.status, final.output_text, _response_calls(final)) != (body.status, body.output_text, _response_calls(body)):
        problems.append(f"stream {final.status} {final.output_text!r} {_response_calls(final)} != JSON "
                        f"{body.status} {body.output_text!r} {_response_calls(body)}")
    if deltas != final.output_text:
        problems.append(f"stream: deltas {deltas!r} != the final output_text {final.output_text!r}")
    u = body.usage
    if final.usage.output_tokens != u.output_tokens or u.output_tokens > kw["max_output_tokens"]:
        problems.append(f"usage {u} (stream: {final.usage}) for max_output_tokens {kw['max_output_tokens']}")
    calls = _response_calls(body)
    if kw.get("tool_choice") not in (None, "auto") and body.status == "completed" and not calls:
        problems.append(f"tool_choice {kw['tool_choice']} but no function call")
    for name, arguments in calls if body.status == "completed" else ():  # else cut by max_output_tokens
        _check_call(name, arguments, kw, problems, "output")
    fmt = (kw.get("text") or {}).get("format")
    if fmt and body.status == "completed" and not calls:
        _check_output(body.output_text, kw, fmt["schema"], False, problems, "output")


def _vectors(r) -> list[list[float]]:
    """The SDK decodes base64 itself unless the caller asked for base64 explicitly."""
    return [array("f", base64.b64decode(d.embedding)).tolist() if isinstance(d.embedding, str) else d.embedding
            for d in r.data]


async def embedding_pair(client, kw: dict, problems: list[str]) -> None:
    """The same input in two encodings (floats, base64): the same vectors."""
    inputs = kw["input"] if isinstance(kw["input"], list) else [kw["input"]]
    other = "float" if kw.get("encoding_format") != "float" else "base64"
    a = await client.embeddings.create(**kw)
    b = await client.embeddings.create(**{**kw, "encoding_format": other})
    for r in (a, b):
        if [d.index for d in r.data] != list(range(len(inputs))) or r.usage.prompt_tokens <= 0:
            problems.append(f"indices {[d.index for d in r.data]}, usage {r.usage} for {len(inputs)} inputs")
            return
    va, vb = _vectors(a), _vectors(b)
    if "dimensions" in kw and any(len(v) != kw["dimensions"] for v in va + vb):
        problems.append(f"vectors of {[len(v) for v in va + vb]} floats, not {kw['dimensions']}")
    for i, (x, y) in enumerate(zip(va, vb)):
        if len(x) != len(y) or max(abs(p - q) for p, q in zip(x, y)) > 1e-6:
            problems.append(f"input {i}: the vector differs between encodings")


# -- the test ---------------------------------------------------------------------------------------

TWINS = {"chat": chat_twin, "completion": completion_twin, "response": response_twin}


async def _run(server) -> list[str]:
    rng = random.Random(SEED)
    tee = Tee()
    client = openai.AsyncOpenAI(base_url=server.api_url, api_key="sk-test", max_retries=0, timeout=60,
                                http_client=httpx.AsyncClient(transport=tee, timeout=60))
    gate = asyncio.Semaphore(CONCURRENCY)
    failures: list[str] = []

    async def one(label: str, kw: dict, work) -> None:
        problems: list[str] = []
        async with gate:
            try:
                await work(problems)
            except Exception as e:  # noqa: BLE001 (an SDK error is a finding, reported with its request)
                problems.append(f"raised {type(e).__name__}: {e}")
        failures.extend(f"{label} {json.dumps(kw)}: {p}" for p in problems)

    jobs = []
    for i, (kind, kw, include_usage) in enumerate(cases(rng)):
        key = f"{kind}-{i}"
        jobs.append(one(key, kw, lambda p, k=key, kw=kw, iu=include_usage, f=TWINS[kind]:
                        f(client, tee, k, kw, iu, p)))
    for i in range(12):
        kw = embedding_request(rng)
        jobs.append(one(f"embedding-{i}", kw, lambda p, kw=kw: embedding_pair(client, kw, p)))
    try:
        await asyncio.gather(*jobs)
    finally:
        await client.close()
    return failures


def test_random_sdk_mix(server):
    failures = asyncio.run(_run(server))
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:25])
