"""The cyclic GC's thresholds (``fakeai.app._GC_THRESHOLDS``) against Python's defaults
(700, 10, 10): zero-latency chat throughput side by side, then timing fidelity (TTFT 200 ms,
ITL 20 ms) at one concurrency level, each server's collections and longest pause.

    python bench/gc_thresholds.py [--rounds 3] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))
TOOLS_PY = "/tmp/bench-tools-venv/bin/python"


def serve(argv: list[str]) -> None:
    """``fakeai ARGV`` with the thresholds of ``$GC_THRESHOLDS`` ("default": Python's), writing
    its collections (count, total and longest pause per generation) to ``$GC_REPORT``."""
    import fakeai.app as app_mod
    from fakeai.cli import main as fakeai_main

    if os.environ.get("GC_THRESHOLDS") == "default":
        app_mod._GC_THRESHOLDS = (700, 10, 10)
    seen = {"n": [0, 0, 0], "ms": [0.0, 0.0, 0.0], "max_ms": 0.0, "t": 0.0, "warm": False}
    warm = app_mod._warm

    def warmed(*a):  # count only what serving costs, not the start-up's own collections
        warm(*a)
        seen["warm"] = True

    app_mod._warm = warmed

    def observe(phase: str, info: dict) -> None:
        if phase == "start":
            seen["t"] = time.perf_counter()
            return
        if not seen["warm"]:
            return
        ms = (time.perf_counter() - seen["t"]) * 1e3
        g = info["generation"]
        seen["n"][g] += 1
        seen["ms"][g] += ms
        seen["max_ms"] = max(seen["max_ms"], ms)
        if g == 2 or sum(seen["n"]) % 10 == 0:
            with open(os.environ["GC_REPORT"], "w") as f:
                f.write(repr({k: seen[k] for k in ("n", "ms", "max_ms")}))

    gc.callbacks.append(observe)
    sys.exit(fakeai_main(argv))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", default="256")
    args = p.parse_args()
    if not os.path.exists(TOOLS_PY):
        subprocess.run(["bash", os.path.join(SHARED, "setup.sh"), "tools"], check=True)
    me = f"{sys.executable} {os.path.abspath(__file__)} --serve server --host 127.0.0.1 --port {{port}} "
    with tempfile.TemporaryDirectory(prefix="fakeai-gc-") as tmp:
        def cmd(which: str, flags: str) -> str:
            return f"GC_THRESHOLDS={which} GC_REPORT={tmp}/{which}.txt {me}{flags} --log-level warning"

        def report(which: str) -> str:
            path = f"{tmp}/{which}.txt"
            return open(path).read() if os.path.exists(path) else "(no collection after start-up)"

        zero = "--ttft 0 --itl 0"
        subprocess.run([TOOLS_PY, os.path.join(SHARED, "compare.py"), "--a-cmd", cmd("tuned", zero),
                        "--a-port", "18070", "--a-name", "tuned", "--b-cmd", cmd("default", zero),
                        "--b-port", "18071", "--b-name", "default", "--rounds", str(args.rounds), "--",
                        "--scenarios", "chat,stream", "--requests", "6000", "--concurrency", "64"], check=True)
        for which in ("tuned", "default"):
            print(f"== {which}: GC during the last throughput run: {report(which)}")
        for which in ("tuned", "default"):
            os.path.exists(f"{tmp}/{which}.txt") and os.remove(f"{tmp}/{which}.txt")
            subprocess.run([TOOLS_PY, os.path.join(SHARED, "fidelity.py"), "--name", which, "--ttft-ms", "200",
                            "--itl-ms", "20", "--port", "18072", "--concurrency", args.concurrency,
                            "--cmd", cmd(which, "--ttft 200 --itl 20")], check=True)
            print(f"== {which}: GC during the fidelity run: {report(which)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2:])
    else:
        sys.exit(main())
