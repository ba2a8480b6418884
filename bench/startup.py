#!/usr/bin/env python3
"""Startup to ready, and idle RSS, of a server command (median of N starts).

    python bench/startup.py --runs 5 -- fakeai server --port {port}
    python bench/startup.py --runs 5 --path /health -- /tmp/bench-fakeai-venv/bin/fakeai server --port {port}

'ready' = the first 200 from --path (default /health/ready, which for fakeai means every
tokenizer is loaded; /health answers as soon as the socket is up).
"""
import argparse
import shlex
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def one(cmd, path, timeout=30.0):
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - t0
                        break
            except OSError:
                time.sleep(0.005)
        else:
            raise SystemExit("server never became ready")
        time.sleep(1.0)  # let background warm-up settle before reading idle RSS
        return ready, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def main():
    argv = sys.argv[1:]
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--path", default="/health/ready")
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if not cmd:
        p.error("give the server command after --")
    if len(cmd) == 1:
        cmd = shlex.split(cmd[0])
    rows = [one(cmd, args.path) for _ in range(args.runs)]
    print(f"startup to ready (median of {args.runs}): {statistics.median(r[0] for r in rows) * 1000:.0f} ms; "
          f"idle RSS {statistics.median(r[1] for r in rows):.1f} MB")


if __name__ == "__main__":
    main()
