"""``/metrics/stream`` through the real server (docs/metrics-api.md): a filtered snapshot, then
merge-patch deltas that rebuild the same document; re-subscribing, pings and errors; a slow client
is dropped without the server's memory growing; the handshake needs a key when auth is on (and the
rate-limit state shows in the JSON)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import openai
import pytest
import websockets
from websockets.sync.client import connect as sync_connect

from fakeai.telemetry import stream as stream_mod
from fakeai.telemetry.stream import StreamHub
from tests.server import run_server, wait_for

MODEL = "gpt-4o-mini"
OTHER = "meta-llama/Llama-3.1-8B-Instruct"
META = {"object", "time", "uptime_s", "version", "minimal"}


@pytest.fixture(scope="module")
def srv():
    with run_server("--ttft", "0", "--itl", "0") as s:
        yield s


def ws_url(s, query: str = "") -> str:
    return s.base_url.replace("http://", "ws://") + "/metrics/stream" + (f"?{query}" if query else "")


def apply(state, patch):
    """JSON Merge Patch (RFC 7386)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(state) if isinstance(state, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = apply(out.get(k), v)
    return out


def strip_none(doc):
    if isinstance(doc, dict):
        return {k: strip_none(v) for k, v in doc.items() if v is not None}
    return doc


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_snapshot_then_deltas_rebuild_the_document(srv):
    query = f"families=requests,models,cluster&models={MODEL}&interval=0.1"

    async def run():
        async with websockets.connect(ws_url(srv, query), compression=None, proxy=None) as ws:
            snap = json.loads(await ws.recv())
            assert snap["type"] == "snapshot" and snap["seq"] == 0 and snap["interval"] == 0.1
            assert snap["families"] == ["requests", "models", "cluster"] and snap["models"] == [MODEL]
            assert set(snap["data"]) == META | {"requests", "models", "cluster"}
            state = strip_none(snap["data"])
            base = state["requests"]["total"]
            c = openai.AsyncOpenAI(base_url=srv.api_url, api_key="sk-stream", max_retries=0)
            msgs = [{"role": "user", "content": "stream me"}]
            await asyncio.gather(*[c.chat.completions.create(model=m, messages=msgs, max_tokens=4)
                                   for m in [MODEL] * 5 + [OTHER] * 2])
            seq = 0
            deadline = time.monotonic() + 10
            while state["requests"]["total"] < base + 7:
                assert time.monotonic() < deadline
                m = json.loads(await ws.recv())
                assert m["type"] == "delta" and m["seq"] == seq + 1
                seq = m["seq"]
                assert set(m["patch"]) <= META | {"requests", "models", "cluster"}
                state = apply(state, m["patch"])
            m = json.loads(await ws.recv())  # one built after the requests were all counted
            state = apply(state, m["patch"])
            fresh = httpx.get(srv.base_url + "/metrics/json?" + query.rsplit("&", 1)[0], timeout=10).json()
            return state, strip_none(fresh)

    state, fresh = asyncio.run(run())
    assert list(state["models"]) == [MODEL]  # the other model is filtered out
    assert all(w["model"] == MODEL for w in state["cluster"]["workers"].values())
    assert state["requests"] == fresh["requests"]
    assert state["models"][MODEL]["requests"] == fresh["models"][MODEL]["requests"]
    assert state["models"][MODEL]["tokens"] == fresh["models"][MODEL]["tokens"]
    assert state["cluster"]["workers"].keys() == fresh["cluster"]["workers"].keys()


def test_resubscribe_ping_and_errors(srv):
    async def run():
        async with websockets.connect(ws_url(srv, "families=requests&interval=0.1"), proxy=None) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            await ws.send(json.dumps({"type": "subscribe", "families": ["bogus"]}))
            await ws.send(json.dumps({"type": "subscribe", "interval": 0}))
            await ws.send("not json")
            await ws.send(json.dumps({"type": "dance"}))
            await ws.send(json.dumps({"type": "ping"}))
            got = []
            while len([m for m in got if m["type"] != "delta"]) < 5:
                got.append(json.loads(await ws.recv()))
            others = [m for m in got if m["type"] != "delta"]
            assert [m.get("code") for m in others] == ["invalid_subscription", "invalid_subscription",
                                                       "invalid_json", "unknown_message", None]
            assert others[-1]["type"] == "pong"
            for m in got:  # the subscription did not change
                if m["type"] == "delta":
                    assert set(m["patch"]) <= META | {"requests"}
            seqs = [m["seq"] for m in got]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            await ws.send(json.dumps({"type": "subscribe", "families": ["gpus"], "interval": 0.2}))
            while True:
                m = json.loads(await ws.recv())
                if m["type"] == "snapshot":
                    break
            assert set(m["data"]) == META | {"gpus"} and m["interval"] == 0.2 and m["data"]["gpus"]
            t0 = time.monotonic()
            for _ in range(3):
                assert json.loads(await ws.recv())["type"] == "delta"
            assert time.monotonic() - t0 >= 0.35  # three intervals of 0.2 s (less the first's head start)
        async with websockets.connect(ws_url(srv, "families=nope"), proxy=None) as ws:
            m = json.loads(await ws.recv())
            assert m["type"] == "error" and "nope" in m["message"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1008

    asyncio.run(run())


def test_slow_client_is_dropped_and_memory_stays_bounded(srv):
    c = srv.client()
    for i in range(20):  # some keys and models, so that snapshots are not tiny
        openai.OpenAI(base_url=srv.api_url, api_key=f"sk-slow-{i}", max_retries=0).chat.completions.create(
            model=[MODEL, OTHER][i % 2], messages=[{"role": "user", "content": "x"}], max_tokens=2)
    c.models.list()
    h = httpx.Client(base_url=srv.base_url, timeout=10)
    dropped = h.get("/health/detailed").json()["metrics"]["stream_dropped"]
    rss0 = rss_kib(srv.proc.pid)
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    with sync_connect(ws_url(srv, "interval=0.1"), sock=sock, compression=None, proxy=None, max_queue=1,
                      ping_interval=None, close_timeout=1) as ws:
        deadline = time.monotonic() + 30
        try:
            # never read; ask for a full snapshot again and again until the server gives up on us
            while time.monotonic() < deadline and sent < 20000:
                ws.send(json.dumps({"type": "subscribe"}))
                sent += 1
                if sent % 50 == 0 and h.get("/health/detailed").json()["metrics"]["stream_dropped"] > dropped:
                    break
        except websockets.ConnectionClosed:
            pass
        assert wait_for(lambda: h.get("/health/detailed").json()["metrics"]["stream_dropped"] > dropped, timeout=15)
        assert wait_for(lambda: h.get("/health/detailed").json()["metrics"]["stream_clients"] == 0, timeout=5)
        grown_mib = (rss_kib(srv.proc.pid) - rss0) / 1024
    print(f"slow client dropped after {sent} snapshot requests; server RSS {grown_mib:+.1f} MiB")
    assert grown_mib < 64, f"server RSS grew {grown_mib:.0f} MiB for one slow client ({sent} snapshots asked)"
    # the server is fine afterwards
    assert h.get("/metrics/json?families=requests").status_code == 200


def test_a_blocked_socket_is_dropped_with_a_bounded_queue(monkeypatch):
    monkeypatch.setattr(stream_mod, "SEND_TIMEOUT", 60.0)

    class Doc:
        n = 0

        def document(self, families, models):
            Doc.n += 1
            return {"object": "metrics", "time": float(Doc.n), "n": Doc.n}

    async def run():
        hub = StreamHub(Doc())
        never = asyncio.Event()
        sends, closes, longest = [], [], [0]

        async def send(text):
            sends.append(text)
            await never.wait()  # the socket takes nothing

        async def receive():
            await never.wait()

        async def close(code, reason):
            closes.append((code, reason))

        real_push = stream_mod._Client.push

        def push(self, message):
            real_push(self, message)
            longest[0] = max(longest[0], len(self.queue))

        stream_mod._Client.push = push
        try:
            await asyncio.wait_for(hub.serve(send, receive, close, {"interval": "0.1"}), 10)
        finally:
            stream_mod._Client.push = real_push
        return hub, sends, closes, longest[0]

    hub, sends, closes, longest = asyncio.run(run())
    assert closes == [(1013, "slow consumer")]
    assert hub.dropped == 1 and not hub.clients
    assert len(sends) == 1 and longest == stream_mod.QUEUE


def test_auth_applies_and_rate_limit_state_shows():
    key = "sk-metrics-good-0123456789abcdef"
    with run_server("--ttft", "0", "--itl", "0", "--api-key", key, "--rate-limit-rpm", "3") as s:
        async def handshake(headers):
            async with websockets.connect(ws_url(s, "families=rate_limits"), additional_headers=headers,
                                          proxy=None) as ws:
                return json.loads(await ws.recv())

        with pytest.raises((websockets.InvalidStatus, websockets.ConnectionClosed)) as refused:
            asyncio.run(handshake({}))
        if isinstance(refused.value, websockets.InvalidStatus):
            assert refused.value.response.status_code == 401
        snap = asyncio.run(handshake({"Authorization": f"Bearer {key}"}))
        assert snap["type"] == "snapshot" and snap["data"]["rate_limits"]["policy"]["rpm"] == 3
        assert httpx.get(s.base_url + "/metrics/json").status_code == 401

        c = openai.OpenAI(base_url=s.api_url, api_key=key, max_retries=0)
        for _ in range(3):
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        d = httpx.get(s.base_url + "/metrics/json", headers={"Authorization": f"Bearer {key}"}).json()
        rl = d["rate_limits"]
        assert rl["enabled"] is True and rl["rejected"] == 1
        (kid, state), = rl["keys"].items()
        assert kid in d["keys"] and key not in json.dumps(d)
        assert state["requests_limit"] == 3 and state["requests_remaining"] == 0 and state["rejected"] == 1
        assert state["model"] == MODEL
        assert d["errors"]["by_code"] == {"rate_limit_exceeded": 1} and d["errors"]["by_status"] == {"429": 1}
