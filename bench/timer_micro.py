#!/usr/bin/env python3
"""The shared timer against one asyncio.sleep per token per stream (uvloop).

N streams each wait for T token deadlines ITL apart; prints the CPU time per
wake-up and the lateness of wake-ups for both strategies.

    python bench/timer_micro.py --streams 1024 --tokens 64 --itl-ms 20
"""
import argparse
import asyncio
import statistics
import time

import uvloop

from fakeai.engine.clock import Ticker


async def stream(sleep_until, loop, first, itl, tokens, late):
    for i in range(tokens):
        when = first + i * itl
        await sleep_until(when)
        late.append(loop.time() - when)


async def run(kind, streams, tokens, itl):
    loop = asyncio.get_running_loop()
    ticker = Ticker(0.001)

    async def plain(when):
        d = when - loop.time()
        if d > 0:
            await asyncio.sleep(d)

    sleep_until = ticker.sleep_until if kind == "ticker" else plain
    late = []
    first = loop.time() + 0.05
    c0 = time.process_time()
    await asyncio.gather(*(stream(sleep_until, loop, first + (k % 20) * 0.001, itl, tokens, late)
                           for k in range(streams)))
    cpu = time.process_time() - c0
    late.sort()
    return cpu / (streams * tokens) * 1e6, statistics.median(late) * 1000, late[int(len(late) * 0.99)] * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=1024)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--itl-ms", type=float, default=20.0)
    args = p.parse_args()
    for kind in ("sleep", "ticker", "sleep", "ticker"):
        us, p50, p99 = uvloop.run(run(kind, args.streams, args.tokens, args.itl_ms / 1000))
        print(f"{kind:>6}: {us:5.2f} us CPU per wake-up; lateness p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
