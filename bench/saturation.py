#!/usr/bin/env python3
"""The saturation curve of the simulated cluster, the prefix cache's TTFT savings, and the CPU
the simulation costs per request.

    python bench/saturation.py [--model meta-llama/Llama-3.1-70B-Instruct] [--max-num-seqs 64]
                               [--levels 1,8,16,32,48,64,96,128,192] [--tokens 64] [--skip-cpu]

1. Knee: one server with the model's catalog timing (no --ttft/--itl) and --max-num-seqs N;
   the shared load generator streams ``--tokens`` tokens per request at each concurrency. Up to N
   the batch grows (throughput rises, TTFT flat); past N requests queue (throughput flat, TTFT
   grows by the queueing).
2. Prefix cache: long prompts (``--prompt-words``) sent identical every time against unique ones.
3. CPU: requests driven through the engine in-process (no HTTP), with pinned zero latency (the
   cluster's bookkeeping alone) and with the catalog's timing at concurrency 64 (plus the step
   loop); process CPU time per request.

Needs the shared tools' virtualenv (``bash ../shared/bench/setup.sh tools``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "bench")
TOOLS_PY = "/tmp/bench-tools-venv/bin/python"


def start(port: int, *flags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fakeai", "server", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def loadgen(port: int, model: str, concurrency: int, requests: int, tokens: int, *extra: str) -> dict:
    cmd = [TOOLS_PY, os.path.join(SHARED, "loadgen.py"), "--url", f"http://127.0.0.1:{port}",
           "--scenarios", "stream", "--model", model, "--concurrency", str(concurrency),
           "--requests", str(requests), "--stream-max-tokens", str(tokens), "--warmup", "8",
           "--duration", "120", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


async def _level(port: int, args, concurrency: int) -> tuple[dict, dict]:
    """One concurrency level, polling /health for the peak running and waiting meanwhile."""
    peak = {"running": 0, "waiting": 0}
    load = asyncio.create_task(asyncio.to_thread(loadgen, port, args.model, concurrency,
                                                 max(3 * concurrency, 48), args.tokens))
    while not load.done():
        h = await asyncio.to_thread(get, port, "/health")
        peak["running"] = max(peak["running"], h["running"])
        peak["waiting"] = max(peak["waiting"], h["waiting"])
        await asyncio.wait([load], timeout=0.25)
    return load.result(), peak


def knee(args) -> None:
    port = args.port
    proc = start(port, "--max-num-seqs", str(args.max_num_seqs), "--output-length", "max")
    try:
        print(f"## Saturation: {args.model}, catalog timing, max_num_seqs {args.max_num_seqs}, "
              f"{args.tokens} tokens a request\n")
        print("| concurrency | req/s | tokens/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | peak running | peak waiting |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for c in args.levels:
            r, peak = asyncio.run(_level(port, args, c))
            print(f"| {c} | {r['req_per_s']:.1f} | {r['chunks_per_s']:.0f} | {r['ttft_p50_ms']:.0f} ms | "
                  f"{r['ttft_p99_ms']:.0f} ms | {r['itl_p50_ms']:.1f} ms | {r['itl_p99_ms']:.1f} ms | "
                  f"{peak['running']} | {peak['waiting']} |", flush=True)
    finally:
        stop(proc)


def prefix(args) -> None:
    port = args.port + 1
    proc = start(port)
    try:
        print(f"\n## Prefix cache: {args.model}, prompts of ~{args.prompt_words} words, concurrency 4\n")
        print("| prompts | TTFT p50 | TTFT p99 | hit rate (server) |")
        print("| --- | ---: | ---: | ---: |")
        before = get(port, "/kv-cache/metrics")["cache_performance"]
        for label, extra in (("unique", ()), ("identical", ("--same-prompt",))):
            r = loadgen(port, args.model, 4, 40, 8, "--prompt-words", str(args.prompt_words), *extra)
            after = get(port, "/kv-cache/metrics")["cache_performance"]
            q = after["prefix_query_tokens"] - before["prefix_query_tokens"]
            h = after["tokens_reused"] - before["tokens_reused"]
            before = after
            print(f"| {label} | {r['ttft_p50_ms']:.0f} ms | {r['ttft_p99_ms']:.0f} ms | {h / q:.1%} |", flush=True)
    finally:
        stop(proc)


def cpu(args) -> None:
    from fakeai.config import Settings
    from fakeai.engine.core import Engine, GenParams
    from fakeai.registry import ModelRegistry

    registry = ModelRegistry.load()

    async def run(settings: Settings, concurrency: int, n: int, prompts: int = 200) -> tuple[float, float]:
        eng = Engine(settings, registry)
        m = eng.model(args.model)
        text = " ".join(f"w{i}" for i in range(prompts))

        def gen(i: int):
            ids = eng.chat_prompt(m, [{"role": "user", "content": f"{i} {text}"}])
            return eng.generate(m, len(ids), GenParams(max_tokens=args.tokens, ignore_eos=True), "", prompt_ids=ids)

        gens = [gen(i) for i in range(n)]
        queue = iter(gens)

        async def worker():
            for g in queue:
                await eng.complete(g)

        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - c0) / n, time.perf_counter() - w0

    print("\n## CPU of the simulation, in-process (no HTTP), per request\n")
    print("| timing | concurrency | CPU per request | wall |")
    print("| --- | ---: | ---: | ---: |")
    base = Settings(ttft_ms=0, itl_ms=0)
    for caching in (True, False):
        s = base.model_copy(update={"enable_prefix_caching": caching})
        per, wall = asyncio.run(run(s, 64, 5000))
        print(f"| pinned 0/0, prefix caching {'on' if caching else 'off'} | 64 | {per * 1e6:.0f} µs | {wall:.2f} s |")
    per, wall = asyncio.run(run(Settings(max_num_seqs=args.max_num_seqs), 64, 640))
    print(f"| catalog (step loop), {args.tokens} tokens | 64 | {per * 1e6:.0f} µs | {wall:.2f} s |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="meta-llama/Llama-3.1-70B-Instruct")
    p.add_argument("--max-num-seqs", type=int, default=64)
    p.add_argument("--levels", default="1,8,16,32,48,64,96,128,192")
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=1500)
    p.add_argument("--port", type=int, default=18040)
    p.add_argument("--skip-cpu", action="store_true")
    args = p.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    knee(args)
    prefix(args)
    if not args.skip_cpu:
        cpu(args)


if __name__ == "__main__":
    main()
