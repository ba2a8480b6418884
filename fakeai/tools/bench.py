"""``fakeai bench``: a bounded smoke benchmark of any OpenAI-compatible chat endpoint.

It sends ``requests`` chat completions with ``concurrency`` in flight, streaming
or not, and measures client-side what a user sees: request rate, output tokens
per second, and TTFT, ITL and end-to-end percentiles (TTFT and ITL only when
streaming). It is a quick check, not a replacement for AIPerf or genai-perf.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

_WORDS = ("the system answers each request with realistic text and timing so that clients routers "
          "gateways and dashboards can be tested without any accelerator at all").split()


@dataclass
class BenchConfig:
    base_url: str
    model: str = "gpt-4o-mini"
    requests: int = 200
    concurrency: int = 16
    stream: bool = True
    max_tokens: int = 64
    prompt_words: int = 64
    api_key: str = "sk-fakeai"
    timeout: float = 120.0


@dataclass
class Result:
    ok: bool
    status: int
    e2e: float
    ttft: float | None = None
    itls: list[float] = field(default_factory=list)
    output_tokens: int = 0


def _prompt(n: int, i: int) -> str:
    return " ".join(_WORDS[(i + k) % len(_WORDS)] for k in range(n))


async def _one(client: httpx.AsyncClient, cfg: BenchConfig, i: int) -> Result:
    body = {"model": cfg.model, "max_tokens": cfg.max_tokens, "stream": cfg.stream,
            "messages": [{"role": "user", "content": _prompt(cfg.prompt_words, i)}]}
    if cfg.stream:
        body["stream_options"] = {"include_usage": True}
    t0 = time.perf_counter()
    try:
        if not cfg.stream:
            r = await client.post("/chat/completions", content=orjson.dumps(body))
            e2e = time.perf_counter() - t0
            if r.status_code != 200:
                return Result(False, r.status_code, e2e)
            usage = r.json().get("usage") or {}
            return Result(True, 200, e2e, output_tokens=usage.get("completion_tokens", 0))
        result = Result(True, 200, 0.0)
        last = None
        async with client.stream("POST", "/chat/completions", content=orjson.dumps(body)) as r:
            if r.status_code != 200:
                await r.aread()
                return Result(False, r.status_code, time.perf_counter() - t0)
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = orjson.loads(line[6:])
                if chunk.get("usage"):
                    result.output_tokens = chunk["usage"].get("completion_tokens", 0)
                if not any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
                    continue
                now = time.perf_counter()
                if last is None:
                    result.ttft = now - t0
                else:
                    result.itls.append(now - last)
                last = now
        result.e2e = time.perf_counter() - t0
        return result
    except httpx.HTTPError:
        return Result(False, 0, time.perf_counter() - t0)


async def run(cfg: BenchConfig, progress=None) -> dict:
    """Run the benchmark; ``progress(done)`` is called after each request."""
    limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
    headers = {"authorization": f"Bearer {cfg.api_key}", "content-type": "application/json"}
    results: list[Result] = []
    next_index = 0
    async with httpx.AsyncClient(base_url=cfg.base_url.rstrip("/"), headers=headers, limits=limits,
                                 timeout=cfg.timeout) as client:
        async def worker():
            nonlocal next_index
            while next_index < cfg.requests:
                i = next_index
                next_index += 1
                results.append(await _one(client, cfg, i))
                if progress is not None:
                    progress(len(results))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(cfg.concurrency, cfg.requests))))
        wall = time.perf_counter() - t0
    return summarize(results, wall)


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def summarize(results: list[Result], wall: float) -> dict:
    ok = [r for r in results if r.ok]
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    itls = [x for r in ok for x in r.itls]
    e2es = [r.e2e for r in ok]
    tokens = sum(r.output_tokens for r in ok)
    stats = {}
    for name, vals in (("ttft_s", ttfts), ("itl_s", itls), ("e2e_s", e2es)):
        stats[name] = {"p50": _pct(vals, 50), "p90": _pct(vals, 90), "p99": _pct(vals, 99),
                       "mean": statistics.fmean(vals) if vals else None}
    return {
        "requests": len(results), "succeeded": len(ok), "failed": len(results) - len(ok),
        "failures_by_status": dict(Counter(str(r.status) for r in results if not r.ok)),
        "duration_s": wall, "requests_per_s": len(ok) / wall if wall else 0.0,
        "output_tokens": tokens, "output_tokens_per_s": tokens / wall if wall else 0.0,
        **stats,
    }
