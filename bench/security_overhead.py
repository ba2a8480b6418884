"""What authentication and rate limiting cost: zero-latency chat throughput with them on
against the same build with them off, side by side (A B A B, then B A B A; medians).

    python bench/security_overhead.py [--rounds 6] [--requests 6000] [--a all|auth|limits] [--b off|headers]

Server A: an API key, all four rate limits (generous: nothing is refused, every request
is counted in four windows and reconciled) and abuse detection (``--a all``; or only the
key and abuse detection, ``--a auth``; or only the limits). Server B: none of it, or
with ``--b headers`` none of it but the six x-ratelimit headers, fixed, on every response
(what the headers alone cost, apart from the work behind them). Both get the same load
from the shared loadgen (``../shared/bench``); an aiohttp shim adds ``Authorization:
Bearer`` to every loadgen request, for both servers alike.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import stat
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))
TOOLS_PY = "/tmp/bench-tools-venv/bin/python"
KEY = "sk-bench-0123456789abcdef0123456789abcdef"
BASE = "fakeai server --host 127.0.0.1 --port {port} --ttft 0 --itl 0 --log-level warning"
LIMITS = (" --rate-limit-rpm 1000000000 --rate-limit-tpm 1000000000000 --rate-limit-rpd 1000000000"
          " --rate-limit-tpd 1000000000000")
SERVER_A = {"all": f" --api-key {KEY}{LIMITS} --abuse-detection",  # every request counted in 4 windows
            "auth": f" --api-key {KEY} --abuse-detection",
            "limits": LIMITS}


def shim(argv: list[str]) -> None:
    """Run loadgen (argv[0]) with the Authorization header on every aiohttp session."""
    import functools

    import aiohttp

    aiohttp.ClientSession = functools.partial(aiohttp.ClientSession, headers={"Authorization": f"Bearer {KEY}"})
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


STATIC_HEADERS = [(b"x-ratelimit-limit-requests", b"1000000000"), (b"x-ratelimit-remaining-requests", b"999999990"),
                  (b"x-ratelimit-reset-requests", b"1ms"), (b"x-ratelimit-limit-tokens", b"1000000000000"),
                  (b"x-ratelimit-remaining-tokens", b"999999999000"), (b"x-ratelimit-reset-tokens", b"1ms")]


def serve_static_headers(argv: list[str]) -> None:
    """Run ``fakeai ARGV`` adding the six x-ratelimit headers, fixed, to every response."""
    from fakeai.cli import main as fakeai_main
    from fakeai.security import auth

    guard = auth.Guard.__call__

    async def with_headers(self, scope, receive, send):
        if scope["type"] == "http":
            scope["state"].setdefault("response_headers", []).extend(STATIC_HEADERS)
        return await guard(self, scope, receive, send)

    auth.Guard.__call__ = with_headers
    sys.exit(fakeai_main(argv))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6, help="rounds in all, half in each order")
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--scenarios", default="chat")
    p.add_argument("--ports", default="18086,18087", help="two free loopback ports")
    p.add_argument("--a", choices=sorted(SERVER_A), default="all",
                   help="server A: auth + limits + abuse detection (all), auth + abuse detection, or limits")
    p.add_argument("--b", choices=["off", "headers"], default="off",
                   help="server B: security off, or off but sending the six headers")
    args = p.parse_args()
    ports = args.ports.split(",")
    a = (args.a, BASE + SERVER_A[args.a])
    b = (args.b, BASE if args.b == "off" else BASE.replace(
        "fakeai ", f"{sys.executable} {os.path.abspath(__file__)} --serve-static-headers ", 1))
    if not os.path.exists(TOOLS_PY):
        subprocess.run(["bash", os.path.join(SHARED, "setup.sh"), "tools"], check=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fakeai-secbench-") as tmp:
        wrapper = os.path.join(tmp, "python")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec {TOOLS_PY} {os.path.abspath(__file__)} --loadgen-shim "$@"\n')
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IEXEC)
        # compare.py starts its A first in every round, and that position alone costs a few per
        # cent here: half the rounds run each way round
        for first, second in ((a, b), (b, a)):
            cmd = [TOOLS_PY, os.path.join(SHARED, "compare.py"),
                   "--a-cmd", first[1], "--a-port", ports[0], "--a-name", first[0],
                   "--b-cmd", second[1], "--b-port", ports[1], "--b-name", second[0],
                   "--rounds", str(max(1, args.rounds // 2)), "--python", wrapper, "--",
                   "--scenarios", args.scenarios, "--requests", str(args.requests),
                   "--concurrency", str(args.concurrency)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            print(out.stdout, end="")
            print(out.stderr, end="", file=sys.stderr)
            if out.returncode:
                return out.returncode
            rows += [{**r, "server": first[0] if r["side"] == "a" else second[0]}
                     for r in map(json.loads, (line for line in out.stdout.splitlines()
                                               if line.startswith('{"scenario"')))]
    _summary(rows, a[0], b[0])
    return 0


def _summary(rows: list[dict], a: str, b: str) -> None:
    """Per server, over both orders: median req/s and median server CPU per request (steadier
    than req/s on a shared machine: another process's load slows the clock, not the server)."""
    med = {}
    for name in (a, b):
        mine = [r for r in rows if r["server"] == name and r["req_per_s"]]
        med[name] = (statistics.median(r["req_per_s"] for r in mine),
                     statistics.median(r["server_cpu_pct"] / 100 / r["req_per_s"] * 1e6 for r in mine))
    print(f"\n{'server':<10} {'req/s':>8} {'CPU us/req':>11}")
    for name, (rps, cpu) in med.items():
        print(f"{name:<10} {rps:>8.0f} {cpu:>11.0f}")
    print(f"{a} / {b}: throughput x{med[a][0] / med[b][0]:.3f}, CPU per request {med[a][1] / med[b][1] - 1:+.1%}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen-shim":
        shim(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-static-headers":
        serve_static_headers(sys.argv[2:])
    else:
        sys.exit(main())
