"""What the embeddings route costs apart from the vectors: zero-latency ``/v1/embeddings``
throughput of the real server against the same build with the vector computation replaced
by one cached vector ("floor": everything else real, tokenizing, the engine, rendering 1,536
floats, metrics), and fakeai 0.3.2, side by side (A B A B, medians).

    python bench/embed_floor.py [--rounds 3] [--requests 6000] [--concurrency 64]

The floor bounds what any way of computing vectors can reach on this machine: the budget
left for the vectors is ``1/target - 1/floor`` seconds of server CPU per request.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))
TOOLS_PY = "/tmp/bench-tools-venv/bin/python"
FAKEAI_032 = "/tmp/bench-fakeai-venv/bin/fakeai"
FLAGS = "server --host 127.0.0.1 --port {port} --ttft 0 --itl 0 --log-level warning"
LOAD = ["--scenarios", "embed", "--embed-model", "text-embedding-3-small"]


def serve_floor(argv: list[str]) -> None:
    """Run ``fakeai ARGV`` with ``embeddings.embed`` answering one cached vector per shape."""
    import fakeai.engine.embeddings as vectors
    from fakeai.cli import main as fakeai_main

    real, cache = vectors.embed, {}

    def constant(texts, dim, seed, dimensions=None):
        shape = (len(texts), dim, seed, dimensions)
        if shape not in cache:
            cache[shape] = real(["one constant text"] * len(texts), dim, seed, dimensions)
        return cache[shape].copy()

    vectors.embed = constant
    sys.exit(fakeai_main(argv))


def compare(a: tuple[str, str], b: tuple[str, str], args) -> dict:
    cmd = [TOOLS_PY, os.path.join(SHARED, "compare.py"), "--a-cmd", a[1], "--a-port", "18040", "--a-name", a[0],
           "--b-cmd", b[1], "--b-port", "18041", "--b-name", b[0], "--rounds", str(args.rounds), "--",
           *LOAD, "--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    print(out, end="")
    return json.loads(out.strip().splitlines()[-1])["scenarios"]["embed"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    if not (os.path.exists(TOOLS_PY) and os.path.exists(FAKEAI_032)):
        subprocess.run(["bash", os.path.join(SHARED, "setup.sh"), "tools", "fakeai"], check=True)
    ours = ("ours", "fakeai " + FLAGS)
    floor = ("floor", f"{sys.executable} {os.path.abspath(__file__)} --serve-floor " + FLAGS)
    old = ("fakeai-0.3.2", (f"FAKEAI_GENERATION__TTFT_MS=0 FAKEAI_GENERATION__ITL_MS=0 {FAKEAI_032} server "
                            "--host 127.0.0.1 --port {port}"))
    first = compare(floor, ours, args)
    second = compare(ours, old, args)
    floor_rps, ours_rps, old_rps = first["A_req_per_s"], second["A_req_per_s"], second["B_req_per_s"]
    target = 10 * old_rps
    print(f"\nfloor {floor_rps:.0f} req/s ({floor_rps / old_rps:.1f}x fakeai 0.3.2), ours {ours_rps:.0f} "
          f"({ours_rps / old_rps:.1f}x), fakeai 0.3.2 {old_rps:.0f}")
    print(f"10x target {target:.0f} req/s: time left for the vectors at the target "
          f"{max(1e6 / target - 1e6 / floor_rps, 0):.0f} us per request; ours spends "
          f"{1e6 / first['B_req_per_s'] - 1e6 / floor_rps:.0f} us on them")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-floor":
        serve_floor(sys.argv[2:])
    else:
        sys.exit(main())
