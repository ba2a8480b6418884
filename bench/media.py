#!/usr/bin/env python3
"""Images and speech requests per second at zero latency (a server you started).

    fakeai server --port 18090 --ttft 0 --itl 0 &
    python bench/media.py --url http://127.0.0.1:18090 [--requests 200] [--concurrency 8]
"""
import argparse
import asyncio
import statistics
import time

import httpx

CASES = {
    "image dall-e-2 256x256 png (b64)": ("/v1/images/generations", {
        "model": "dall-e-2", "prompt": "a lighthouse at sunset", "size": "256x256", "response_format": "b64_json"}),
    "image gpt-image-1 1024x1024 low": ("/v1/images/generations", {
        "model": "gpt-image-1", "prompt": "a lighthouse at sunset", "size": "1024x1024", "quality": "low"}),
    "speech tts-1 mp3, 20 words": ("/v1/audio/speech", {
        "model": "tts-1", "voice": "alloy", "response_format": "mp3",
        "input": "The quick brown fox jumps over the lazy dog while the harbour lights come on one by one tonight."}),
    "speech tts-1 wav, 20 words": ("/v1/audio/speech", {
        "model": "tts-1", "voice": "alloy", "response_format": "wav",
        "input": "The quick brown fox jumps over the lazy dog while the harbour lights come on one by one tonight."}),
}


async def run(url, path, body, requests, concurrency, vary):
    lat = []
    counter = iter(range(requests))

    async def worker(c):
        for i in counter:
            b = dict(body)
            if vary:  # distinct prompts: no render cache hits
                key = "prompt" if "prompt" in b else "input"
                b[key] = f"{b[key]} {i}"
            t = time.perf_counter()
            r = await c.post(path, json=b)
            r.raise_for_status()
            await r.aread()
            lat.append(time.perf_counter() - t)

    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(concurrency)))
        return requests / (time.perf_counter() - t0), statistics.median(lat)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    for name, (path, body) in CASES.items():
        rps, p50 = asyncio.run(run(args.url, path, body, args.requests, args.concurrency, vary=True))
        print(f"{name:<36} {rps:8.1f} req/s   p50 {p50 * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
