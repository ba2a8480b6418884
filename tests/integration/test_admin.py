"""The admin API (run-time config, bans), abuse detection, prompt-injection detection,
safety refusals and the JSON shape limits, on real servers.

Bans are per client IP: each abuse test talks from its own loopback address
(127.0.0.x, all routed to the server's 127.0.0.1) so the tests do not ban each other.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from fakeai.api.chat_refusal import REFUSAL
from tests.openapi_spec import validate, validate_error
from tests.server import run_server, wait_for

ADMIN = "adm-test-5a4b3c2d1e0f9a8b7c6d5e4f"
ADM = {"Authorization": f"Bearer {ADMIN}"}
MSGS = [{"role": "user", "content": "Tell me about the weather."}]
DATA = Path(__file__).resolve().parents[1] / "data"


def chat(model: str = "gpt-4o-mini", content: str = "Tell me about the weather.", **kw) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 5, **kw}


def corpus(name: str) -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.replace("\\n", "\n") for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def adm():
    with run_server("--ttft", "0", "--itl", "0", "--admin-key", ADMIN, "--log-level", "info",
                    "--abuse-detection", "--abuse-window-s", "30", "--abuse-auth-failures", "3",
                    "--abuse-rate-limit-hits", "2", "--abuse-oversized", "2", "--abuse-injections", "2",
                    "--abuse-ban-s", "1", "--abuse-max-ban-s", "2", "--injection-detection", "flag",
                    "--max-request-bytes", "4096") as s:
        yield s


def from_ip(server, last_octet: int) -> httpx.Client:
    """A client whose requests come from 127.0.0.<last_octet>."""
    return httpx.Client(base_url=server.base_url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=f"127.0.0.{last_octet}"))


def test_config_needs_the_admin_key_and_masks_secrets(adm):
    with adm.http() as c:
        assert c.get("/admin/config").status_code == 401
        assert c.get("/admin/config", headers={"Authorization": "Bearer nope"}).status_code == 401
        body = c.get("/admin/config", headers=ADM).json()
    assert body["settings"]["admin_key"] == "***" and ADMIN not in str(body)
    assert body["settings"]["ttft_ms"] == 0.0
    assert {"ttft_ms", "itl_ms", "jitter", "rate_limit_rpm", "api_key", "injection_detection"} <= set(body["runtime"])


def _ttft(c: httpx.Client) -> float:
    t0 = time.perf_counter()
    with c.stream("POST", "/v1/chat/completions", json=chat(stream=True)) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                return time.perf_counter() - t0
    raise AssertionError("no content")


def test_latency_changes_at_run_time_and_is_logged(adm):
    with adm.http() as c:
        assert _ttft(c) < 0.25
        r = c.patch("/admin/config", headers=ADM, json={"ttft_ms": 400, "itl_ms": 0})
        assert r.status_code == 200 and r.json()["settings"]["ttft_ms"] == 400.0
        try:
            assert _ttft(c) >= 0.4
        finally:
            c.patch("/admin/config", headers=ADM, json={"ttft_ms": 0})
        assert _ttft(c) < 0.25
    assert wait_for(lambda: "admin: ttft_ms changed from 0.0 to 400.0" in adm.output())
    assert "admin: ttft_ms changed from 400.0 to 0.0" in adm.output()


@pytest.mark.parametrize("patch, param, code", [
    ({"bogus_option": 1}, "bogus_option", "unknown_parameter"),
    ({"port": 9000}, "port", "unknown_parameter"),
    ({"ttft_ms": "fast"}, "ttft_ms", "invalid_type"),
    ({"ttft_ms": -5}, "ttft_ms", "invalid_value"),
    ({"rate_limit_tier": "tier-9"}, "rate_limit_tier", "invalid_value"),
    ({"ttft_ms": 10, "jitter": 2}, "jitter", "invalid_value"),
])
def test_invalid_changes_are_400_and_change_nothing(adm, patch, param, code):
    with adm.http() as c:
        before = c.get("/admin/config", headers=ADM).json()
        r = c.patch("/admin/config", headers=ADM, json=patch)
        assert r.status_code == 400
        validate_error(r.json())
        assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)
        assert c.get("/admin/config", headers=ADM).json() == before


def test_rate_limits_change_at_run_time(adm):
    with from_ip(adm, 6) as c:
        try:
            assert c.patch("/admin/config", headers=ADM, json={"rate_limit_rpm": 2}).status_code == 200
            codes = [c.post("/v1/chat/completions", json=chat("gpt-4.1")).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
            c.patch("/admin/config", headers=ADM, json={"rate_limit_rpm": 4})  # the count is kept
            assert [c.post("/v1/chat/completions", json=chat("gpt-4.1")).status_code for _ in range(3)] == \
                [200, 200, 429]
        finally:
            c.patch("/admin/config", headers=ADM, json={"rate_limit_rpm": None})
        assert c.delete("/admin/bans/127.0.0.6", headers=ADM).status_code == 200  # two 429s: banned
        r = c.post("/v1/chat/completions", json=chat("gpt-4.1"))
        assert r.status_code == 200 and "x-ratelimit-limit-requests" not in r.headers


def test_failed_auths_ban_escalate_lift_and_expire(adm):
    with from_ip(adm, 2) as c, adm.http() as admin:
        for _ in range(3):
            assert c.get("/admin/config", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.get("/v1/models")
        assert r.status_code == 403 and r.json()["error"]["code"] == "ip_banned"
        validate_error(r.json())
        assert r.headers["retry-after"] == "1"
        bans = admin.get("/admin/bans", headers=ADM).json()
        assert bans["enabled"] is True
        (ban,) = [b for b in bans["data"] if b["ip"] == "127.0.0.2"]
        assert ban["reason"] == "auth" and ban["bans"] == 1
        # an admin may lift it
        assert admin.delete("/admin/bans/127.0.0.2", headers=ADM).json()["lifted"] == 1
        assert c.get("/v1/models").status_code == 200
        assert admin.delete("/admin/bans/127.0.0.2", headers=ADM).status_code == 404
        # the next ban is twice as long (capped at --abuse-max-ban-s 2), and ends on its own
        for _ in range(3):
            c.get("/admin/config", headers={"Authorization": "Bearer wrong"})
        r = c.get("/v1/models")
        assert r.status_code == 403 and r.headers["retry-after"] == "2"
        assert wait_for(lambda: c.get("/v1/models").status_code == 200, timeout=5)


def test_oversized_bodies_ban(adm):
    with from_ip(adm, 3) as c:
        big = {"model": "gpt-4o-mini", "messages": MSGS, "metadata": {"pad": "x" * 5000}}
        assert [c.post("/v1/chat/completions", json=big).status_code for _ in range(2)] == [413, 413]
        assert c.post("/v1/chat/completions", json=chat()).status_code == 403


def test_flagged_injections_pass_but_ban(adm):
    attack = corpus("prompts_malicious.txt")[0]
    with from_ip(adm, 4) as c:
        r = c.post("/v1/chat/completions", json=chat(content=attack))
        assert r.status_code == 200 and r.headers["x-fakeai-injection"] == "override"
        assert "x-fakeai-injection" not in c.post("/v1/chat/completions", json=chat()).headers
        assert c.post("/v1/chat/completions", json=chat(content=attack)).status_code == 200
        assert c.post("/v1/chat/completions", json=chat()).status_code == 403
    assert "prompt injection (override) detected from 127.0.0.4" in adm.output()


def test_rate_limit_hits_ban_and_admin_passes_a_ban(adm):
    with from_ip(adm, 5) as c:
        try:
            c.patch("/admin/config", headers=ADM, json={"rate_limit_rpm": 1})
            codes = [c.post("/v1/chat/completions", json=chat("gpt-4.1-mini")).status_code for _ in range(4)]
            assert codes == [200, 429, 429, 403]
            # the admin key still reaches /admin from a banned address
            assert c.get("/admin/bans", headers=ADM).status_code == 200
        finally:
            c.patch("/admin/config", headers=ADM, json={"rate_limit_rpm": None})
        assert c.delete("/admin/bans", headers=ADM).json()["lifted"] >= 1
        assert c.post("/v1/chat/completions", json=chat()).status_code == 200


def _claim_huge_body(port: int) -> bytes:
    """The status line the server answers to a request that announces a 64 MiB body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 67108864\r\n\r\n{}")
        return s.recv(64).split(b"\r\n")[0]


def test_no_bans_without_abuse_detection(server):
    with server.http() as c:
        for _ in range(8):
            assert _claim_huge_body(server.port) == b"HTTP/1.1 413 Request Entity Too Large"
        assert c.post("/v1/chat/completions", json=chat()).status_code == 200
        assert c.get("/admin/bans").json() == {"object": "list", "enabled": False, "data": []}


# -- refuse mode, safety refusals, JSON limits ---------------------------------------------

@pytest.fixture(scope="module")
def strict():
    with run_server("--ttft", "0", "--itl", "0", "--injection-detection", "refuse", "--safety-refusals",
                    "--max-json-depth", "6", "--max-json-array", "50") as s:
        yield s


def test_refuse_mode_blocks_attacks_and_passes_every_benign_prompt(strict):
    with strict.http() as c:
        for prompt in corpus("prompts_malicious.txt")[::4]:
            r = c.post("/v1/chat/completions", json=chat(content=prompt))
            assert r.status_code == 400, prompt
            validate_error(r.json())
            assert r.json()["error"]["code"] == "prompt_injection_detected"
        for prompt in corpus("prompts_benign.txt"):
            r = c.post("/v1/chat/completions", json=chat(content=prompt))
            assert r.status_code == 200, prompt
            assert r.json()["choices"][0]["message"]["refusal"] is None


def test_moderation_flagged_prompts_get_a_refusal(strict):
    client = strict.client()
    harmful = "I will kill you."
    out = client.chat.completions.create(**chat(content=harmful, max_tokens=50))
    validate("CreateChatCompletionResponse", out.model_dump(exclude_unset=True))
    msg = out.choices[0].message
    assert (msg.refusal, msg.content, out.choices[0].finish_reason) == (REFUSAL, None, "stop")
    assert out.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(**chat(content=harmful, max_tokens=50), stream=True,
                                                 stream_options={"include_usage": True}))
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    text = "".join(ch.choices[0].delta.refusal or "" for ch in chunks if ch.choices)
    assert text == REFUSAL
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == out.usage.completion_tokens
    assert client.chat.completions.create(**chat()).choices[0].message.refusal is None


def test_json_depth_and_array_limits(strict):
    deep: object = "x"
    for _ in range(7):
        deep = {"k": deep}
    with strict.http() as c:
        r = c.post("/v1/chat/completions", json={**chat(), "metadata": deep})
        assert r.status_code == 400 and "nested more than 6 levels" in r.json()["error"]["message"]
        validate_error(r.json())
        r = c.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["a"] * 51})
        assert r.status_code == 400 and "51 items, more than the limit of 50" in r.json()["error"]["message"]
        assert c.post("/v1/embeddings", json={"model": "text-embedding-3-small",
                                              "input": ["a"] * 50}).status_code == 200
        r = c.post("/v1/messages", json={"model": "claude-3-5-haiku-latest", "max_tokens": 5,
                                         "messages": [{"role": "user", "content": "hi"}], "metadata": deep})
        assert r.status_code == 400 and r.json()["type"] == "error"  # Anthropic's envelope there
