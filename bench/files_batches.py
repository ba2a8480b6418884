#!/usr/bin/env python3
"""Files uploaded and downloaded per second and MB/s (small and large files), and a
10,000-line chat batch at zero latency in lines per second (a server you started).

    fakeai server --port 18091 --ttft 0 --itl 0 --data-dir /tmp/fakeai-bench &
    python bench/files_batches.py --url http://127.0.0.1:18091 [--small 500] [--large 3] [--lines 10000]
"""
import argparse
import asyncio
import json
import os
import time

import httpx

BOUNDARY = "fakeai-bench"


def form_head(purpose: str, filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
HEADERS = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


async def small_files(c: httpx.AsyncClient, n: int, size: int, concurrency: int) -> None:
    data = os.urandom(size)
    body = form_head("user_data", "small.bin") + data + TAIL
    ids: list[str] = []
    todo = iter(range(n))

    async def up():
        for _ in todo:
            r = await c.post("/v1/files", content=body, headers=HEADERS)
            r.raise_for_status()
            ids.append(r.json()["id"])

    t = time.perf_counter()
    await asyncio.gather(*(up() for _ in range(concurrency)))
    report(f"upload {n} x {size // 1024} KiB (concurrency {concurrency})", n, n * size, time.perf_counter() - t)
    queue = iter(list(ids))

    async def down():
        for fid in queue:
            r = await c.get(f"/v1/files/{fid}/content")
            assert r.status_code == 200 and len(r.content) == size

    t = time.perf_counter()
    await asyncio.gather(*(down() for _ in range(concurrency)))
    report(f"download {n} x {size // 1024} KiB (concurrency {concurrency})", n, n * size, time.perf_counter() - t)
    await asyncio.gather(*(c.delete(f"/v1/files/{fid}") for fid in ids))


async def large_files(c: httpx.AsyncClient, n: int, size: int) -> None:
    block = os.urandom(1 << 20)

    async def body():
        yield form_head("assistants", "large.bin")
        for _ in range(size // len(block)):
            yield block
        yield TAIL

    ids = []
    t = time.perf_counter()
    for _ in range(n):
        r = await c.post("/v1/files", content=body(), headers=HEADERS)
        r.raise_for_status()
        ids.append(r.json()["id"])
    report(f"upload {n} x {size >> 20} MiB (streamed)", n, n * size, time.perf_counter() - t)
    t = time.perf_counter()
    for fid in ids:
        got = 0
        async with c.stream("GET", f"/v1/files/{fid}/content") as r:
            async for chunk in r.aiter_raw():
                got += len(chunk)
        assert got == size
    report(f"download {n} x {size >> 20} MiB (streamed)", n, n * size, time.perf_counter() - t)
    for fid in ids:
        await c.delete(f"/v1/files/{fid}")


async def batch(c: httpx.AsyncClient, lines: int, max_tokens: int) -> None:
    rows = "\n".join(json.dumps({
        "custom_id": f"line-{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "max_tokens": max_tokens,
                 "messages": [{"role": "user", "content": f"Write a sentence about the number {i}."}]}})
        for i in range(lines)).encode()
    r = await c.post("/v1/files", content=form_head("batch", "in.jsonl") + rows + TAIL, headers=HEADERS)
    r.raise_for_status()
    t0 = time.perf_counter()
    r = await c.post("/v1/batches", json={"input_file_id": r.json()["id"], "endpoint": "/v1/chat/completions",
                                          "completion_window": "24h"})
    r.raise_for_status()
    bid = r.json()["id"]
    first_progress = None
    while True:
        b = (await c.get(f"/v1/batches/{bid}")).json()
        if first_progress is None and b["status"] != "validating":
            first_progress = time.perf_counter()
        if b["status"] in ("completed", "failed", "cancelled", "expired"):
            break
        await asyncio.sleep(0.02)
    total = time.perf_counter() - t0
    assert b["status"] == "completed" and b["request_counts"]["completed"] == lines, b
    out = await c.get(f"/v1/files/{b['output_file_id']}/content")
    assert out.content.count(b"\n") == lines
    report(f"batch {lines} chat lines, max_tokens {max_tokens}: create -> completed", lines, len(out.content), total,
           unit="lines")
    print(f"    validating {first_progress - t0:.2f} s, running + finalizing {total - (first_progress - t0):.2f} s, "
          f"output {len(out.content) >> 20} MiB")


def report(name: str, n: int, nbytes: int, seconds: float, unit: str = "files") -> None:
    print(f"{name:<58} {n / seconds:9.1f} {unit}/s {nbytes / seconds / 1e6:9.1f} MB/s  ({seconds:.2f} s)")


async def main_async(args) -> None:
    async with httpx.AsyncClient(base_url=args.url, timeout=600) as c:
        await small_files(c, args.small, 16 * 1024, args.concurrency)
        await small_files(c, max(1, args.small // 10), 1 << 20, args.concurrency)
        await large_files(c, args.large, args.large_mib << 20)
        await batch(c, args.lines, args.max_tokens)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--small", type=int, default=500, help="small files (16 KiB); a tenth as many of 1 MiB")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--large", type=int, default=3)
    p.add_argument("--large-mib", type=int, default=256)
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--max-tokens", type=int, default=16)
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
