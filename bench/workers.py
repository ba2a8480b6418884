#!/usr/bin/env python3
"""``--workers N`` scaling with a light load generator (wrk, C), so that the server's processes
and not the load generator get the cores: zero-latency non-streaming chat, A B A B, medians.

    python bench/workers.py --rounds 3 --duration 8 --workers 1,2

Reports req/s, the server's CPU (all its processes) and wrk's CPU per round. The shared
Python load generator (bench/workers.sh) needs about half a core at these rates itself,
which caps what a second server process can add on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me about the sea."}], "max_tokens": 16}'
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total


def tree(pid: int) -> list[int]:
    out = [pid]
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        out += tree(int(child))
    return out


def run(workers: int, duration: float, connections: int, script: str) -> dict:
    port = free_port()
    data = tempfile.mkdtemp(prefix="fakeai-bench-workers-")
    server = subprocess.Popen(["fakeai", "server", "--host", "127.0.0.1", "--port", str(port), "--ttft", "0",
                               "--itl", "0", "--log-level", "warning", "--workers", str(workers),
                               "--data-dir", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if urllib.request.urlopen(url + "/health/ready", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.0 + workers)  # every process up and warm
        subprocess.run(["wrk", "-t1", f"-c{connections}", "-d2s", "-s", script, url + "/v1/chat/completions"],
                       capture_output=True, check=True)  # warm-up
        pids = tree(server.pid)
        hz = os.sysconf("SC_CLK_TCK")
        s0 = cpu_ticks(pids)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "-s", script,
                                url + "/v1/chat/completions"], stdout=subprocess.PIPE, text=True)
        out, _ = wrk.communicate()
        wall = time.monotonic() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, reaped by communicate()
        w_cpu = 100 * (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / wall
        s1 = cpu_ticks(pids)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {"workers": workers, "req_per_s": rps, "server_cpu_pct": 100 * (s1 - s0) / hz / wall,
                "non_2xx": int(errors.group(1)) if errors else 0, "wrk_cpu_pct": round(w_cpu, 1)}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
    counts = [int(x) for x in args.workers.split(",")]
    results: dict[int, list[dict]] = {n: [] for n in counts}
    for r in range(args.rounds):
        for n in counts:
            res = run(n, args.duration, args.connections, f.name)
            results[n].append(res)
            print(json.dumps({"round": r + 1, **res}), flush=True)
    base = statistics.median(x["req_per_s"] for x in results[counts[0]])
    for n in counts:
        rps = statistics.median(x["req_per_s"] for x in results[n])
        cpu = statistics.median(x["server_cpu_pct"] for x in results[n])
        wrk_cpu = statistics.median(x["wrk_cpu_pct"] for x in results[n])
        print(f"workers {n}: {rps:,.0f} req/s (x{rps / base:.2f}), server CPU {cpu:.0f} %, wrk CPU {wrk_cpu:.0f} %")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
