"""Clients that leave: streams and waiting requests dropped at random points (seeded) over raw
sockets, then the server must let go of everything they held (docs/metrics-api.md, docs/metrics.md).

Each dropped connection is closed at one of: half-way through sending its body, right after
sending it, after k SSE events, or in the middle of an event; by FIN or by RST. Afterwards the
cluster's running and waiting counts (``/health``, ``/cluster``, ``vllm:num_requests_*``), the
KV blocks of running requests, the event loop's live tasks and the open descriptors must all come
back to where they were, the cancelled streams must be counted as ``abort`` by
``vllm:request_success_total``, and the server must still answer.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.openapi_spec import validate
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
SEED = 20240611
STREAMS_PER_ROUTE = 36
WAITING = 24  # non-streaming requests dropped while they wait for their completion
MAX_TOKENS = 400  # 20 ms + 400 x 5 ms: every stream lasts about 2 s, far longer than any drop point
SLACK = 3  # tasks / descriptors a settled server may differ by (a timer, a lazily opened file)
ROUTES = {
    "chat": ("/v1/chat/completions", b"[DONE]"),
    "completions": ("/v1/completions", b"[DONE]"),
    "responses": ("/v1/responses", b"response.completed"),
}


def body(route: str, i: int, stream: bool) -> bytes:
    text = f"Disconnect probe {route} {i}: describe a lighthouse keeper's morning in detail."
    if route == "chat":
        doc = {"model": MODEL, "messages": [{"role": "user", "content": text}], "max_tokens": MAX_TOKENS,
               "ignore_eos": True, "stream": stream}
    elif route == "completions":
        doc = {"model": MODEL, "prompt": text, "max_tokens": MAX_TOKENS, "ignore_eos": True, "stream": stream}
    else:
        doc = {"model": MODEL, "input": text, "max_output_tokens": MAX_TOKENS, "stream": stream, "store": False}
    return orjson.dumps(doc)


@pytest.fixture(scope="module")
def srv():
    with run_server("--ttft", "20", "--itl", "5") as s:
        yield s


def get(s, path: str) -> dict:
    r = httpx.get(s.base_url + path, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def prom(s) -> dict[tuple[str, tuple], float]:
    text = httpx.get(s.base_url + "/metrics", timeout=10).text
    return {(x.name, tuple(sorted(x.labels.items()))): x.value
            for f in text_string_to_metric_families(text) for x in f.samples}


def total(m: dict, name: str, **labels) -> float:
    return sum(v for (n, lb), v in m.items() if n == name and all(dict(lb).get(k) == x for k, x in labels.items()))


async def dropped(port: int, path: str, payload: bytes, rng: random.Random, stream: bool,
                  end_marker: bytes) -> dict:
    """Send one request and leave at a random point; what was seen by then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer sk-test\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
    modes = ("mid_body", "after_send", "after_events", "mid_event") if stream else ("mid_body", "waiting")
    mode = rng.choice(modes)
    if rng.random() < 0.5:  # an abortive close (RST) instead of FIN
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    seen = b""
    events = 0
    try:
        if mode == "mid_body":
            writer.write(head + payload[: rng.randrange(1, len(payload))])
            await writer.drain()
            return {"mode": mode, "events": 0, "ended": False}
        writer.write(head + payload)
        await writer.drain()
        if mode == "waiting":
            await asyncio.sleep(rng.uniform(0.0, 0.6))  # the drop point (the completion needs ~2 s)
        elif mode in ("after_events", "mid_event"):
            want = rng.randrange(1, 12)
            extra = rng.randrange(1, 40) if mode == "mid_event" else 0
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                seen += chunk
                start = seen.find(b"\r\n\r\n")
                events = seen.count(b"\n\n", start + 4) if start >= 0 else 0
                if events >= want:
                    break
            if extra:
                seen += await reader.read(extra)
        return {"mode": mode, "events": events, "ended": end_marker in seen}
    finally:
        writer.close()


async def drop_everything(port: int) -> list[dict]:
    rng = random.Random(SEED)
    jobs = []
    for route, (path, marker) in ROUTES.items():
        for i in range(STREAMS_PER_ROUTE):
            jobs.append(dropped(port, path, body(route, i, True), random.Random(rng.random()), True, marker))
    for i in range(WAITING):
        route = ("chat", "completions", "responses")[i % 3]
        path, marker = ROUTES[route]
        jobs.append(dropped(port, path, body(route, 1000 + i, False), random.Random(rng.random()), False, marker))
    return await asyncio.gather(*jobs)


def figures(s) -> dict:
    return get(s, "/health/detailed")["process"]


def settled(s, base: dict) -> dict | None:
    """Everything the dropped requests held is free again (None while something is not)."""
    h = get(s, "/health")
    if h["running"] or h["waiting"]:
        return None
    c = get(s, "/cluster")
    if c["running"] or c["waiting"] or any(w["running"] or w["waiting"] for w in c["workers"]):
        return None
    if any(w["blocks_active"] for w in get(s, "/kv-cache/metrics")["workers"]):
        return None
    m = prom(s)
    if total(m, "vllm:num_requests_running") or total(m, "vllm:num_requests_waiting"):
        return None
    p = figures(s)
    if p["asyncio_tasks"] > base["asyncio_tasks"] + SLACK or p["open_fds"] > base["open_fds"] + SLACK:
        return None
    return p


def test_process_figures_follow_the_server(srv):
    """/health/detailed ``process`` and the ``process_*`` series describe the server process, live."""
    p = figures(srv)
    assert p["pid"] == srv.proc.pid
    with open(f"/proc/{srv.proc.pid}/statm") as f:  # the same process, seen from outside
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 0.8 * rss <= p["rss_bytes"] <= 1.25 * rss
    assert p["threads"] >= 1 and p["asyncio_tasks"] >= 1 and p["uptime_s"] > 0
    m = prom(srv)
    assert abs(total(m, "process_open_fds") - p["open_fds"]) <= SLACK
    assert 0.8 * p["rss_bytes"] <= total(m, "process_resident_memory_bytes") <= 1.25 * p["rss_bytes"]
    assert total(m, "process_start_time_seconds") > 0 and total(m, "process_cpu_seconds_total") > 0

    async def hold(n: int) -> tuple[int, int]:
        conns = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(n)]
        try:
            return await asyncio.to_thread(lambda: wait_for(
                lambda: figures(srv)["open_fds"] >= p["open_fds"] + n, timeout=10) and figures(srv)["open_fds"])
        finally:
            for _, w in conns:
                w.close()

    assert asyncio.run(hold(20)) >= p["open_fds"] + 20  # every accepted connection is a descriptor
    assert wait_for(lambda: figures(srv)["open_fds"] <= p["open_fds"] + SLACK, timeout=10)


def test_dropped_clients_release_everything(srv):
    c = srv.client()
    # one of each kind first, so that what is created once (tokenizer, store tables, timers) is in the baseline
    c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "warm"}], max_tokens=3)
    list(c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "warm"}], max_tokens=3,
                                   stream=True))
    c.completions.create(model=MODEL, prompt="warm", max_tokens=3)
    c.responses.create(model=MODEL, input="warm", max_output_tokens=16, store=False)
    base = figures(srv)
    m = prom(srv)
    aborts_before = total(m, "vllm:request_success_total", finished_reason="abort")
    disconnected_before = total(m, "dynamo_frontend_disconnected_clients")

    seen = asyncio.run(drop_everything(srv.port))

    # while they were dropped, the server had them in flight: the drops are real cancellations
    cut = [x for x in seen if x["mode"] in ("after_events", "mid_event") and not x["ended"]]
    assert len(cut) >= STREAMS_PER_ROUTE  # the seed spreads the modes: about half of the streams
    assert all(x["events"] >= 1 for x in cut)

    after = wait_for(lambda: settled(srv, base), timeout=20, interval=0.1)
    assert after, (base, figures(srv), get(srv, "/cluster")["running"])

    # every stream cut after its first event reached a worker and was aborted there; nothing that
    # never reached the engine (a body cut short) was
    reached = [x for x in seen if x["mode"] != "mid_body"]
    m = prom(srv)
    assert len(cut) <= total(m, "vllm:request_success_total", finished_reason="abort") - aborts_before <= len(reached)
    assert total(m, "dynamo_frontend_disconnected_clients") - disconnected_before >= len(cut)

    # and the server still answers, streamed and not
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "still there?"}],
                                  max_tokens=5)
    validate("CreateChatCompletionResponse", r.model_dump(mode="json", exclude_unset=True))
    chunks = list(c.completions.create(model=MODEL, prompt="still there?", max_tokens=5, stream=True))
    assert chunks and chunks[-1].choices[0].finish_reason == "length"
    assert get(srv, "/health")["status"] == "healthy"


def test_a_body_cut_short_is_not_a_server_error(srv):
    base = figures(srv)
    errors_before = get(srv, "/metrics/json")["errors"]["by_status"].get("500", 0)
    log_before = len(srv.output())
    rng = random.Random(SEED + 1)
    payloads = [(ROUTES[r][0], body(r, 2000 + i, False)) for i, r in enumerate(("chat", "completions", "responses"))]

    async def cut(path: str, payload: bytes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write((f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload[: rng.randrange(1, len(payload))])
        await writer.drain()
        writer.close()

    async def main() -> None:
        await asyncio.gather(*(cut(p, b) for p, b in payloads * 4))

    asyncio.run(main())
    assert wait_for(lambda: settled(srv, base), timeout=10, interval=0.1)  # the server is done with them
    assert get(srv, "/metrics/json")["errors"]["by_status"].get("500", 0) == errors_before
    assert "Traceback" not in srv.output()[log_before:]


def test_a_waiting_client_that_leaves_is_aborted(srv):
    n = 6
    before = total(prom(srv), "vllm:request_success_total", finished_reason="abort")
    payload = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": "a long story"}],
                            "max_tokens": 1000, "ignore_eos": True})  # 20 ms + 1000 x 5 ms = 5 s

    async def main() -> None:
        conns = []
        for _ in range(n):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                          f"\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload)
            await writer.drain()
            conns.append(writer)
        for _ in range(200):  # until all of them are generating (at most 4 s)
            if get(srv, "/health")["running"] >= n:
                break
            await asyncio.sleep(0.02)
        for w in conns:
            w.close()

    asyncio.run(main())
    assert wait_for(lambda: get(srv, "/health")["running"] == 0, timeout=2, interval=0.05)
    assert total(prom(srv), "vllm:request_success_total", finished_reason="abort") - before == n
