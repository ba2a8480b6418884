"""Security overhead measured with wrk (a C load generator using ~3 % of a core), so that the
Python load generator's own work does not share the cores: zero-latency chat, server variants
A B ... then in reverse order each round, medians of req/s and server CPU per request.

    python bench/security_wrk.py [--variants off,all,off+burn15] [--rounds 8] [--duration 3]

Variants: ``off``; ``all`` (an API key, the four rate limits never reached, abuse detection);
``auth``; ``limits``; ``scenarios`` (the four scripted scenarios of docs/faults-and-scenarios.md,
none of which fits the benchmark's request: every request is tried against all four matchers,
then the engine answers); ``full`` (``all`` and ``scenarios``); any of them with ``+burnN``: the guard first spins N µs per request (added
work of a known size, to see what the measurement makes of it). wrk sends the same
``Authorization: Bearer`` header to every variant. Needs ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

KEY = "sk-bench-0123456789abcdef0123456789abcdef"
LIMITS = (" --rate-limit-rpm 1000000000 --rate-limit-tpm 1000000000000 --rate-limit-rpd 1000000000"
          " --rate-limit-tpd 1000000000000")
SCENARIOS = " --scenarios-file SCENARIOS_FILE"
FLAGS = {"off": "", "all": f" --api-key {KEY}{LIMITS} --abuse-detection",
         "auth": f" --api-key {KEY} --abuse-detection", "limits": LIMITS, "scenarios": SCENARIOS,
         "full": f" --api-key {KEY}{LIMITS} --abuse-detection{SCENARIOS}"}
# docs/faults-and-scenarios.md's example: the model glob of the first fits, nothing else does
SCENARIOS_YAML = """
scenarios:
  - name: weather tool loop
    match: {model: "gpt-4o*", user_regex: "(?i)weather in (\\\\w+)"}
    sequence:
      - tool_calls: [{name: get_weather, arguments: {city: Paris, unit: celsius}}]
      - content: "It is 18 degrees and sunny in Paris."
  - name: flaky upstream
    match: {headers: {x-test-case: flaky}}
    sequence:
      - fault: "429, retry-after=200ms"
      - content: "Second time lucky."
  - name: refuse
    match: {system: "You refuse everything"}
    output: {refusal: "I can't help with that."}
  - name: slow and costly
    match: {jmespath: "temperature == `0` && length(messages) > `4`"}
    output: {ttft_ms: 2000, itl_ms: 40, usage: {prompt_tokens: 90000, cached_tokens: 80000}}
"""
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer KEY"
counter = 0
request = function()
  counter = counter + 1
  local body = '{"model": "gpt-4o", "messages": [{"role": "user", "content": "r' .. counter ..
    'x Say hello in one short sentence."}], "max_tokens": 16}'
  return wrk.format(nil, "/v1/chat/completions", nil, body)
end
""".replace("KEY", KEY)


def serve_burning(argv: list[str]) -> None:
    """Run ``fakeai ARGV`` with the guard spinning ``BURN_US`` µs per HTTP request first."""
    from fakeai.cli import main as fakeai_main
    from fakeai.security import auth

    burn, guard = float(os.environ["BURN_US"]) / 1e6, auth.Guard.__call__

    async def burning(self, scope, receive, send):
        if scope["type"] == "http":
            end = time.perf_counter() + burn
            while time.perf_counter() < end:
                pass
        return await guard(self, scope, receive, send)

    auth.Guard.__call__ = burning
    sys.exit(fakeai_main(argv))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def run(variant: str, seconds: int, script: str, scenarios: str) -> tuple[float, float]:
    """(req/s, server CPU µs per request) of one fresh server under wrk."""
    base, _, burn = variant.partition("+burn")
    port, env = _free_port(), dict(os.environ)
    prog = "fakeai"
    if burn:
        env["BURN_US"], prog = burn, f"{sys.executable} {os.path.abspath(__file__)} --serve-burning"
    cmd = (f"exec {prog} server --host 127.0.0.1 --port {port} --ttft 0 --itl 0 --log-level warning"
           f"{FLAGS[base].replace('SCENARIOS_FILE', scenarios)}")
    proc = subprocess.Popen(cmd, shell=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1)  # tokenizers warm
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        subprocess.run(["wrk", "-t1", "-c64", "-d1s", "-s", script, url], capture_output=True, check=True)
        t0 = _ticks(proc.pid)
        out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", script, url],
                             capture_output=True, text=True, check=True).stdout
        cpu = (_ticks(proc.pid) - t0) / os.sysconf("SC_CLK_TCK")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    if "Non-2xx" in out:
        raise SystemExit(f"{variant}: some requests failed\n{out}")
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), cpu / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="off,all")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--duration", type=int, default=3, help="seconds of load per server per round")
    args = p.parse_args()
    variants = args.variants.split(",")
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script, \
            tempfile.NamedTemporaryFile("w", suffix=".yaml") as scenarios:
        script.write(LUA)
        script.flush()
        scenarios.write(SCENARIOS_YAML)
        scenarios.flush()
        for r in range(args.rounds):
            for v in variants if r % 2 == 0 else variants[::-1]:
                results[v].append(run(v, args.duration, script.name, scenarios.name))
    rps0 = statistics.median(x[0] for x in results[variants[0]])
    cpu0 = statistics.median(x[1] for x in results[variants[0]])
    for v in variants:
        rps, cpu = (statistics.median(x[i] for x in results[v]) for i in (0, 1))
        print(f"{v:<14} {rps:8.0f} req/s x{rps / rps0:.3f}   {cpu:6.1f} µs CPU/req x{cpu / cpu0:.3f}   "
              f"rounds: {' '.join(f'{x[0]:.0f}' for x in results[v])}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-burning":
        serve_burning(sys.argv[2:])
    else:
        sys.exit(main())
