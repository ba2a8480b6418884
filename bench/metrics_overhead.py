"""What the metrics API costs: zero-latency non-streaming chat throughput with full metrics and
observers attached against metrics-minimal mode, side by side (A B A B, medians; see README.md).

    python bench/metrics_overhead.py [--rounds 3] [--requests 20000] [--scenarios chat]

Server A: full statistics (the default) with, attached for the whole run, two ``/metrics/stream``
WebSocket clients (every family, 0.5 s) and a dashboard-like poller (``/metrics/json``,
``/metrics/history?since=`` and ``/metrics/by-model``, once a second). Server B:
``--metrics-minimal`` and nothing attached (the Prometheus series are the same in both modes, so
neither is scraped). Both get the same load from the shared loadgen (``../shared/bench``). The
observers run in the server's session, so compare.py stops them with it; they stop by themselves
after ``--observe-s`` seconds in any case.

Besides compare.py's req/s table it prints the server's CPU time per request (from loadgen's
``server_cpu_pct`` x elapsed / requests), medians per side: on a shared, loaded machine throughput
swings with the neighbours' load, CPU per request much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))
TOOLS_PY = "/tmp/bench-tools-venv/bin/python"
BASE = "fakeai server --host 127.0.0.1 --port {port} --ttft 0 --itl 0 --log-level warning"


async def observe(port: int, seconds: float) -> None:
    """Two WebSocket subscribers and a dashboard-like poller against 127.0.0.1:port."""
    import httpx
    import websockets

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while time.monotonic() < deadline:  # wait for the server
            try:
                if (await http.get("/health/ready")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        counts = {"ws_messages": 0, "polls": 0}

        async def subscriber() -> None:
            url = f"ws://127.0.0.1:{port}/metrics/stream?interval=0.5"
            async with websockets.connect(url, proxy=None, max_size=None) as ws:
                while time.monotonic() < deadline:
                    json.loads(await ws.recv())
                    counts["ws_messages"] += 1

        async def poller() -> None:
            since = 0.0
            while time.monotonic() < deadline:
                await http.get("/metrics/json")
                h = (await http.get(f"/metrics/history?since={since}")).json()
                if h["data"]:
                    since = h["data"][-1]["time"]
                await http.get("/metrics/by-model")
                counts["polls"] += 1
                await asyncio.sleep(1.0)

        async def report() -> None:  # into the server's log: proof that the observers ran
            while time.monotonic() < deadline:
                await asyncio.sleep(5.0)
                print("observers:", json.dumps(counts), file=sys.stderr, flush=True)

        await asyncio.gather(subscriber(), subscriber(), poller(), report())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--scenarios", default="chat")
    p.add_argument("--observe-s", type=float, default=600.0, help="cap on the observers' life, seconds")
    args = p.parse_args()
    if not os.path.exists(TOOLS_PY):
        subprocess.run(["bash", os.path.join(SHARED, "setup.sh"), "tools"], check=True)
    observers = f"{sys.executable} {os.path.abspath(__file__)} --observe {{port}} {args.observe_s}"
    a_cmd = f"{BASE} & {observers} & wait"
    out = tempfile.NamedTemporaryFile(prefix="fakeai-metrics-bench-", suffix=".jsonl", delete=False).name
    cmd = [TOOLS_PY, os.path.join(SHARED, "compare.py"), "--out", out,
           "--a-cmd", a_cmd, "--a-port", "18050", "--a-name", "metrics+observers",
           "--b-cmd", BASE + " --metrics-minimal", "--b-port", "18051", "--b-name", "metrics-minimal",
           "--rounds", str(args.rounds), "--", "--scenarios", args.scenarios,
           "--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    rc = subprocess.run(cmd).returncode
    cpu: dict[str, list[float]] = {}
    with open(out) as f:
        for line in f:
            r = json.loads(line)
            if r.get("side") in ("a", "b") and r.get("server_cpu_pct") and r.get("ok"):
                cpu.setdefault(r["side"], []).append(r["server_cpu_pct"] / 100 * r["elapsed_s"] / r["ok"] * 1e6)
    os.unlink(out)
    if len(cpu) == 2:
        a, b = statistics.median(cpu["a"]), statistics.median(cpu["b"])
        print(f"server CPU per request (median of {len(cpu['a'])}): metrics+observers {a:.0f} us, "
              f"metrics-minimal {b:.0f} us, A/B {a / b:.3f}")
        print(json.dumps({"cpu_us_per_request": {"a": [round(x, 1) for x in cpu["a"]],
                                                 "b": [round(x, 1) for x in cpu["b"]]}}))
    return rc


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--observe":
        asyncio.run(observe(int(sys.argv[2]), float(sys.argv[3])))
    else:
        sys.exit(main())
