"""The ``fakeai status``, ``fakeai metrics`` and ``fakeai cache-stats`` commands (docs/metrics-api.md).

They read a running server's ``/health/detailed``, ``/metrics/json`` and ``/kv-cache/metrics``
(or, with ``metrics --replay``, a metrics history file) and draw them with rich.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-url", default=os.environ.get("FAKEAI_BASE_URL", "http://127.0.0.1:8000"),
                   help="server URL (a trailing /v1 is ignored) [env FAKEAI_BASE_URL; default %(default)s]")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"), help="bearer key [env OPENAI_API_KEY]")
    p.add_argument("--json", action="store_true", help="print the server's JSON")


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="a running server's health, store, cluster and metrics state",
                       description="Summarise GET /health/detailed of a running fakeai server.")
    _common(p)
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("metrics", help="a running server's metrics (live with --watch)",
                       description="Throughput, latency percentiles, per-model and per-worker tables from "
                                   "GET /metrics/json; --watch keeps them live, --replay plays a history file.")
    _common(p)
    p.add_argument("--watch", action="store_true", help="refresh until interrupted")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default %(default)s)")
    p.add_argument("--count", type=int, default=None, help="with --watch: stop after this many refreshes")
    p.add_argument("--replay", metavar="FILE", help="play a metrics history file (JSONL) instead of a server")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --replay: times real time (0: as fast as it draws; default %(default)s)")
    p.set_defaults(handler=cmd_metrics)

    p = sub.add_parser("cache-stats", help="a running server's KV cache per worker",
                       description="The prefix cache per worker: blocks used and free, hit rate, evictions "
                                   "(GET /kv-cache/metrics).")
    _common(p)
    p.set_defaults(handler=cmd_cache_stats)


class _Failed(Exception):
    pass


def _root(url: str) -> str:
    return url.rstrip("/").removesuffix("/v1")


def _get(ns, path: str) -> dict:
    import httpx

    headers = {"authorization": f"Bearer {ns.api_key}"} if ns.api_key else {}
    url = _root(ns.base_url) + path
    try:
        r = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as e:
        raise _Failed(f"cannot reach {url}: {e}") from None
    if r.status_code != 200:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):  # not OpenAI's error envelope
            message = r.text[:200]
        raise _Failed(f"{url}: HTTP {r.status_code}: {message}")
    return r.json()


def _run(fn) -> int:
    try:
        return fn()
    except _Failed as e:
        print(f"fakeai: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def cmd_status(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from .metrics_view import status_view

    def run() -> int:
        h = _get(ns, "/health/detailed")
        if ns.json:
            print(json.dumps(h, indent=2))
        else:
            Console().print(status_view(h))
        return 0 if h.get("status") == "healthy" else 1

    return _run(run)


def cmd_cache_stats(ns: argparse.Namespace) -> int:
    from rich.console import Console

    from .metrics_view import cache_view

    def run() -> int:
        kv = _get(ns, "/kv-cache/metrics")
        if ns.json:
            print(json.dumps(kv, indent=2))
        else:
            Console().print(cache_view(kv))
        return 0

    return _run(run)


def cmd_metrics(ns: argparse.Namespace) -> int:
    if ns.interval <= 0 or (ns.count is not None and ns.count < 1) or ns.speed < 0:
        print("fakeai metrics: --interval must be positive, --count at least 1, --speed not negative",
              file=sys.stderr)
        return 2
    if ns.replay:
        return _run(lambda: _replay(ns))
    return _run(lambda: _live(ns) if ns.watch else _once(ns))


def _once(ns) -> int:
    from rich.console import Console

    from .metrics_view import metrics_view

    doc = _get(ns, "/metrics/json")
    if ns.json:
        print(json.dumps(doc, indent=2))
    else:
        Console().print(metrics_view(doc))
    return 0


def _live(ns) -> int:
    from rich.console import Console
    from rich.live import Live

    from .metrics_view import metrics_view

    console = Console()
    n = 0
    with Live(console=console, auto_refresh=False, screen=False) as live:
        while True:
            doc = _get(ns, "/metrics/json")
            if ns.json:
                print(json.dumps(doc), flush=True)
            else:
                live.update(metrics_view(doc), refresh=True)
            n += 1
            if ns.count is not None and n >= ns.count:
                return 0
            time.sleep(ns.interval)


def _entries(path: str):
    try:
        f = open(path, "rb")  # noqa: SIM115 (read lazily, line by line)
    except OSError as e:
        raise _Failed(f"cannot read {path}: {e}") from None
    with f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise _Failed(f"{path}:{number}: not a JSON line") from None


def _replay(ns) -> int:
    from rich.console import Console
    from rich.live import Live

    from .metrics_view import metrics_view

    console = Console()
    previous = None
    shown = 0
    with Live(console=console, auto_refresh=False, screen=False) as live:
        for doc in _entries(ns.replay):
            if previous is not None and ns.speed > 0:
                time.sleep(max(0.0, min(doc.get("time", 0) - previous, 60.0)) / ns.speed)
            previous = doc.get("time", 0)
            if ns.json:
                print(json.dumps(doc), flush=True)
            else:
                live.update(metrics_view(doc), refresh=True)
            shown += 1
    if not shown:
        raise _Failed(f"{ns.replay}: no entries")
    return 0
