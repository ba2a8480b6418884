#!/usr/bin/env python3
"""RSS flatness under unique prompts: RSS after 5,000 requests vs after 50,000.

    python bench/memory.py --url http://127.0.0.1:8000 --pid PID [--total 50000] [--concurrency 32]

Every prompt is unique (a counter and random words), as in a benchmark with no
prefix reuse. Prints the RSS at each checkpoint and the ratio (target <= 1.2).
"""
import argparse
import asyncio
import random
import time

import httpx


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


async def run(url, total, concurrency, checkpoints, pid, stream_every):
    words = [f"w{i}" for i in range(5000)]
    counter = iter(range(total))
    done = 0
    marks = {}
    rng = random.Random(1)

    async def worker(client):
        nonlocal done
        for i in counter:
            prompt = f"request {i}: " + " ".join(rng.choice(words) for _ in range(30))
            body = {"model": "gpt-4o-mini", "max_tokens": 16,
                    "messages": [{"role": "user", "content": prompt}]}
            if stream_every and i % stream_every == 0:
                body["stream"] = True
            r = await client.post("/v1/chat/completions", json=body)
            r.raise_for_status()
            done += 1
            if done in checkpoints:
                marks[done] = rss_mb(pid)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return marks


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--total", type=int, default=50000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--stream-every", type=int, default=4, help="every Nth request streams (0 = none)")
    args = p.parse_args()
    checkpoints = {5000, 10000, 20000, 30000, 40000, args.total}
    t0 = time.time()
    marks = asyncio.run(run(args.url, args.total, args.concurrency, checkpoints, args.pid, args.stream_every))
    for k in sorted(marks):
        print(f"after {k:>6} requests: RSS {marks[k]:.1f} MB")
    print(f"ratio {args.total} / 5000: {marks[args.total] / marks[5000]:.3f}  ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
