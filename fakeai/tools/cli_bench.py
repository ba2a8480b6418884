"""The ``fakeai bench`` command: a progress bar while it runs, then a summary table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="a quick load run against any OpenAI-compatible server",
                       description="Send chat completions at a fixed concurrency and summarise throughput "
                                   "and TTFT/ITL/e2e percentiles (a smoke benchmark, not AIPerf).")
    p.add_argument("--base-url", default=os.environ.get("FAKEAI_BASE_URL", "http://127.0.0.1:8000/v1"),
                   help="API base URL, with /v1 [env FAKEAI_BASE_URL; default %(default)s]")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "sk-fakeai"),
                   help="bearer key [env OPENAI_API_KEY]")
    p.add_argument("--model", default="gpt-4o-mini")
    p.add_argument("-n", "--requests", type=int, default=200, help="requests to send (default %(default)s)")
    p.add_argument("-c", "--concurrency", type=int, default=16, help="requests in flight (default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=64)
    p.add_argument("--no-stream", dest="stream", action="store_false", help="non-streaming requests")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_bench)


def cmd_bench(ns: argparse.Namespace) -> int:
    from .bench import BenchConfig, run

    if ns.requests < 1 or ns.concurrency < 1:
        print("fakeai bench: --requests and --concurrency must be at least 1", file=sys.stderr)
        return 2
    cfg = BenchConfig(base_url=ns.base_url, model=ns.model, requests=ns.requests, concurrency=ns.concurrency,
                      stream=ns.stream, max_tokens=ns.max_tokens, prompt_words=ns.prompt_words,
                      api_key=ns.api_key)
    if ns.json:
        summary = asyncio.run(run(cfg))
        print(json.dumps(summary, indent=2))
    else:
        summary = _run_with_progress(cfg)
        _print_table(summary, cfg)
    return 0 if summary["succeeded"] else 1


def _run_with_progress(cfg):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from .bench import run

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(f"{cfg.model} x{cfg.concurrency}", total=cfg.requests)
        return asyncio.run(run(cfg, progress=lambda done: bar.update(task, completed=done)))


def _ms(v) -> str:
    return "-" if v is None else f"{v * 1000:.1f}"


def _print_table(s: dict, cfg) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title=f"fakeai bench: {cfg.base_url} {cfg.model}, {cfg.requests} requests, "
                       f"concurrency {cfg.concurrency}, {'streaming' if cfg.stream else 'non-streaming'}")
    for col in ("succeeded", "failed", "duration s", "requests/s", "output tokens/s"):
        head.add_column(col, justify="right")
    head.add_row(str(s["succeeded"]), str(s["failed"]), f"{s['duration_s']:.2f}", f"{s['requests_per_s']:.1f}",
                 f"{s['output_tokens_per_s']:.0f}")
    console.print(head)
    lat = Table(title="latency (ms)")
    for col in ("", "p50", "p90", "p99", "mean"):
        lat.add_column(col, justify="right")
    for key, label in (("ttft_s", "TTFT"), ("itl_s", "ITL"), ("e2e_s", "end to end")):
        row = s[key]
        lat.add_row(label, _ms(row["p50"]), _ms(row["p90"]), _ms(row["p99"]), _ms(row["mean"]))
    console.print(lat)
    if s["failures_by_status"]:
        console.print(f"failures by status: {s['failures_by_status']} (0 = connection error)")
