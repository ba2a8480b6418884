"""Soak: mixed traffic at high concurrency for a bounded time, then no failure, no growth.

``FAKEAI_SOAK_SECONDS`` (default 90, what CI runs) bounds the load; ``FAKEAI_SOAK_CONCURRENCY``
(default 128) is the number of clients, each sending one request after another: chat streamed and
not, completions streamed and not, embeddings, the model list, responses streamed and not, and a
file upload followed by its deletion, every prompt unique. A longer profile, by hand::

    FAKEAI_SOAK_SECONDS=1800 FAKEAI_SOAK_CONCURRENCY=256 python -m pytest -s tests/reliability/test_soak.py

Asserted: every response is a 200 and well formed (one of each kind is also validated against the
OpenAI spec); after the warm-up (the first quarter) the server's resident memory stays within
+10 % of what it was at the end of the warm-up; once the load stops, its open descriptors and live
asyncio tasks come back to where they were before it began. The process figures come from
``/health/detailed`` (``process``), sampled every few seconds by a thread of their own, and the
series is printed (``-s`` or ``-rP`` shows it in a passing run).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid

import httpx
import orjson
import pytest

from tests.openapi_spec import validate
from tests.server import run_server, wait_for

SECONDS = float(os.environ.get("FAKEAI_SOAK_SECONDS", "90"))
CONCURRENCY = int(os.environ.get("FAKEAI_SOAK_CONCURRENCY", "128"))
WARMUP = 0.25  # the share of the time after which memory must stop growing
RSS_GROWTH = 1.10
SLACK = 3  # tasks / descriptors a quiet server may differ by (a timer, a lazily opened file)
SAMPLE_S = max(2.0, SECONDS / 45)
CHAT, TEXT, EMBED = "gpt-4o-mini", "gpt-3.5-turbo-instruct", "text-embedding-3-small"
WORDS = ("harbor", "lantern", "meadow", "copper", "violet", "engine", "quartz", "summit", "river", "signal",
         "orchard", "glacier", "ember", "falcon", "marble", "thistle")


class Load:
    """The clients' side: what they sent, what failed, one body of each kind for the spec."""

    def __init__(self, client: httpx.AsyncClient, seed: int) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = {}
        self.failures: list[str] = []
        self.samples: dict[str, dict] = {}

    def prompt(self) -> str:
        """Unique (a random 128-bit id, one word per hex digit), yet of ordinary words only: a unique
        word in every request would measure the bounded per-word caches filling, not leaks."""
        tag = " ".join(WORDS[int(d, 16)] for d in uuid.uuid4().hex)
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randrange(4, 60)))
        return f"Request {tag}. Write about {words}."

    def keep(self, kind: str, body: dict) -> None:
        self.samples.setdefault(kind, body)

    async def post(self, path: str, doc: dict) -> dict:
        r = await self.client.post(path, content=orjson.dumps(doc), headers={"content-type": "application/json"})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r.json()

    async def sse(self, path: str, doc: dict) -> list[bytes]:
        """The ``data:`` payloads of a stream, in order."""
        out = []
        async with self.client.stream("POST", path, content=orjson.dumps(doc),
                                      headers={"content-type": "application/json"}) as r:
            assert r.status_code == 200, (r.status_code, (await r.aread())[:300])
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    out.append(line[6:].encode())
        return out

    # -- the operations -------------------------------------------------------------------------
    async def chat(self) -> None:
        body = await self.post("/v1/chat/completions", {
            "model": CHAT, "messages": [{"role": "user", "content": self.prompt()}],
            "max_tokens": self.rng.randrange(8, 200)})
        assert body["object"] == "chat.completion" and isinstance(body["choices"][0]["message"]["content"], str)
        assert body["usage"]["completion_tokens"] >= 1 and body["choices"][0]["finish_reason"] in ("stop", "length")
        self.keep("CreateChatCompletionResponse", body)

    async def chat_stream(self) -> None:
        data = await self.sse("/v1/chat/completions", {
            "model": CHAT, "messages": [{"role": "user", "content": self.prompt()}],
            "max_tokens": self.rng.randrange(8, 200), "stream": True, "stream_options": {"include_usage": True}})
        assert data[-1] == b"[DONE]", data[-3:]
        chunks = [orjson.loads(d) for d in data[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert chunks[-1]["usage"]["completion_tokens"] >= 1
        assert any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)
        self.keep("CreateChatCompletionStreamResponse", chunks[0])

    async def completion(self) -> None:
        doc = {"model": TEXT, "prompt": self.prompt(), "max_tokens": self.rng.randrange(8, 48)}
        if self.rng.random() < 0.5:
            data = await self.sse("/v1/completions", {**doc, "stream": True})
            assert data[-1] == b"[DONE]" and len(data) >= 2, data[-3:]
            assert all(orjson.loads(d)["object"] == "text_completion" for d in data[:-1])
            return
        body = await self.post("/v1/completions", doc)
        assert body["object"] == "text_completion" and isinstance(body["choices"][0]["text"], str)
        self.keep("CreateCompletionResponse", body)

    async def embedding(self) -> None:
        body = await self.post("/v1/embeddings", {"model": EMBED, "input": [self.prompt(), self.prompt()]})
        assert [d["index"] for d in body["data"]] == [0, 1] and len(body["data"][0]["embedding"]) == 1536
        self.keep("CreateEmbeddingResponse", body)

    async def models(self) -> None:
        r = await self.client.get("/v1/models")
        assert r.status_code == 200, r.text[:300]
        body = r.json()
        assert body["object"] == "list" and any(m["id"] == CHAT for m in body["data"])
        self.keep("ListModelsResponse", body)

    async def response(self) -> None:
        doc = {"model": CHAT, "input": self.prompt(), "max_output_tokens": self.rng.randrange(16, 64),
               "store": self.rng.random() < 0.5}
        if self.rng.random() < 0.5:
            data = await self.sse("/v1/responses", {**doc, "stream": True})
            last = orjson.loads(data[-1])
            assert last["type"] in ("response.completed", "response.incomplete"), last["type"]
            return
        body = await self.post("/v1/responses", doc)
        assert body["object"] == "response" and body["status"] in ("completed", "incomplete")
        self.keep("Response", body)

    async def file(self) -> None:
        content = (self.prompt() + "\n").encode() * self.rng.randrange(1, 40)
        r = await self.client.post("/v1/files", files={"file": ("soak.txt", content, "text/plain")},
                                   data={"purpose": "user_data"})
        assert r.status_code == 200, r.text[:300]
        f = r.json()
        assert f["object"] == "file" and f["bytes"] == len(content)
        self.keep("OpenAIFile", f)
        r = await self.client.delete(f"/v1/files/{f['id']}")
        assert r.status_code == 200 and r.json()["deleted"] is True, r.text[:300]

    OPS = (("chat", 3), ("chat_stream", 3), ("completion", 2), ("embedding", 2), ("models", 1), ("response", 2),
           ("file", 1))

    async def user(self, until: float) -> None:
        names = [n for n, w in self.OPS for _ in range(w)]
        while time.monotonic() < until:
            name = self.rng.choice(names)
            try:
                await getattr(self, name)()
            except Exception as e:  # noqa: BLE001 (every failure is reported, none stops the load)
                self.failures.append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
            self.counts[name] = self.counts.get(name, 0) + 1


async def run_load(base_url: str, seconds: float, concurrency: int) -> list[Load]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits,
                                 headers={"authorization": "Bearer sk-soak"}) as client:
        loads = [Load(client, seed) for seed in range(concurrency)]
        until = time.monotonic() + seconds
        await asyncio.gather(*(x.user(until) for x in loads))
    return loads


class Sampler(threading.Thread):
    """``/health/detailed`` every ``interval`` seconds, on a connection of its own."""

    def __init__(self, base_url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.base_url, self.interval = base_url, interval
        self.rows: list[dict] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def sample(self, client: httpx.Client, phase: str) -> dict:
        d = client.get("/health/detailed").json()
        row = {"t": round(time.monotonic() - self.t0, 1), "phase": phase, **d["process"],
               "running": d["cluster"]["running"], "waiting": d["cluster"]["waiting"]}
        self.rows.append(row)
        return row

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stop.wait(self.interval):
                self.sample(client, "load")


def table(rows: list[dict]) -> str:
    out = [f"{'t_s':>7} {'phase':<8} {'rss_mib':>8} {'fds':>5} {'tasks':>6} {'threads':>7} {'running':>7} "
           f"{'waiting':>7}"]
    out += [f"{r['t']:>7} {r['phase']:<8} {r['rss_bytes'] / 2**20:>8.1f} {r['open_fds']:>5} {r['asyncio_tasks']:>6} "
            f"{r['threads']:>7} {r['running']:>7} {r['waiting']:>7}" for r in rows]
    return "\n".join(out)


def warm(base_url: str) -> None:
    """One of each operation, so that what is made once (tokenizers, store tables) is in the baseline."""
    async def once() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            load = Load(client, -1)
            for name, _ in Load.OPS:
                await getattr(load, name)()
            await load.completion()  # both kinds
            await load.response()

    asyncio.run(once())


@pytest.mark.soak
@pytest.mark.timeout(SECONDS + 240)
def test_soak_mixed_traffic_without_failures_or_growth(request, capsys):
    with run_server("--ttft", "5", "--itl", "1") as srv, srv.http() as h:
        warm(srv.base_url)
        sampler = Sampler(srv.base_url, SAMPLE_S)
        base = sampler.sample(h, "before")
        sampler.start()
        try:
            loads = asyncio.run(run_load(srv.base_url, SECONDS, CONCURRENCY))
        finally:
            sampler.stop.set()
            sampler.join()

        def quiet():
            row = sampler.sample(h, "after")
            return (row["running"] == row["waiting"] == 0 and row["asyncio_tasks"] <= base["asyncio_tasks"] + SLACK
                    and row["open_fds"] <= base["open_fds"] + SLACK)

        settled = wait_for(quiet, timeout=30, interval=0.5)

        counts: dict[str, int] = {}
        for x in loads:
            for k, v in x.counts.items():
                counts[k] = counts.get(k, 0) + v
        failures = [f for x in loads for f in x.failures]
        samples: dict[str, dict] = {}
        for x in loads:
            for k, v in x.samples.items():
                samples.setdefault(k, v)
        report = (f"soak: {SECONDS:.0f} s, {CONCURRENCY} clients, {sum(counts.values())} requests "
                  f"({sum(counts.values()) / SECONDS:.0f}/s) {dict(sorted(counts.items()))}, "
                  f"{len(failures)} failed\n" + table(sampler.rows))
        print(report)  # for -rP and the failure report
        if request.config.getoption("capture") != "no":
            with capsys.disabled():  # and on the terminal in a plain run
                print("\n" + report)

        assert not failures, failures[:20]
        assert all(counts.get(name) for name, _ in Load.OPS), counts
        for component, body in samples.items():
            validate(component, body)

        # the load began right after the "before" sample (t close to 0)
        during = [r for r in sampler.rows if r["phase"] == "load"]
        warmup = [r for r in during if r["t"] <= SECONDS * WARMUP] or during[:1]
        ref = warmup[-1]["rss_bytes"]
        later = [r for r in sampler.rows if r["phase"] != "before" and r["t"] > warmup[-1]["t"]]
        assert later, sampler.rows
        peak = max(r["rss_bytes"] for r in later)
        assert peak <= ref * RSS_GROWTH, f"RSS grew from {ref / 2**20:.1f} MiB to {peak / 2**20:.1f} MiB"
        assert settled, (base, sampler.rows[-1])
