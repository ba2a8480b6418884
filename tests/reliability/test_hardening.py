"""Server-level limits against hostile or broken clients (fakeai/httpproto.py), over raw
sockets against the real server: slowloris heads and idle connections are cut after the
header timeout, oversized heads get 431, a connection limit answers 503, idle keep-alive
connections close, a stuck request gets 504, and the listen backlog bounds the kernel's
accept queue. Every refusal is OpenAI's error envelope, and the server keeps serving."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import time

import httpx
import openai
import pytest

from tests.openapi_spec import validate_error
from tests.server import run_server, wait_for

HEADER_TIMEOUT_S, MAX_HEAD, KEEP_ALIVE_S, REQUEST_TIMEOUT_S = 1.0, 16 * 1024, 0.5, 0.5
MAX_CONNECTIONS, BACKLOG = 4, 4
CHAT = {"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture(scope="module")
def limited():
    with run_server("--ttft", "0", "--itl", "0", "--header-timeout-s", str(HEADER_TIMEOUT_S),
                    "--max-header-bytes", str(MAX_HEAD), "--keep-alive-timeout-s", str(KEEP_ALIVE_S),
                    "--request-timeout-s", str(REQUEST_TIMEOUT_S)) as s:
        yield s


@pytest.fixture(scope="module")
def crowded():
    with run_server("--ttft", "0", "--itl", "0", "--max-connections", str(MAX_CONNECTIONS),
                    "--listen-backlog", str(BACKLOG)) as s:
        yield s


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(path: str = "/v1/models", method: str = "GET", extra: bytes = b"", length: int | None = None) -> bytes:
    out = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method.encode(), path.encode()) + extra
    if length is not None:
        out += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % length
    return out + b"\r\n"


def response(sock: socket.socket, method: str = "GET") -> http.client.HTTPResponse:
    r = http.client.HTTPResponse(sock, method=method)
    r.begin()
    return r


def closed(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` (end of input) within ``timeout``; drops what it reads."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([sock], [], [], 0.05)[0]:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def refusal(r: http.client.HTTPResponse, status: int, code: str) -> dict:
    assert r.status == status
    assert r.getheader("connection") == "close" and r.getheader("content-type") == "application/json"
    body = json.loads(r.read())
    validate_error(body)
    assert body["error"]["code"] == code
    return body


def still_serving(server) -> None:
    with server.http() as c:
        r = c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


# -- header timeout ------------------------------------------------------------------------
def test_slowloris_is_cut_after_the_header_timeout_while_others_are_served(limited):
    slow = connect(limited)
    trickle = head(extra=b"X-Padding: " + b"p" * 200 + b"\r\n")  # 40 s at a byte per 0.2 s
    served = sent = 0
    t0 = time.monotonic()
    with httpx.Client(base_url=limited.base_url, timeout=10) as normal:
        while not select.select([slow], [], [], 0.2)[0]:  # a byte every 0.2 s until the server answers
            assert time.monotonic() - t0 < 10 * HEADER_TIMEOUT_S, "the slow head was never cut"
            slow.sendall(trickle[sent:sent + 1])
            sent += 1
            assert normal.post("/v1/chat/completions", json=CHAT).status_code == 200  # others keep being served
            served += 1
    elapsed = time.monotonic() - t0
    r = response(slow)
    refusal(r, 408, "request_timeout")
    assert closed(slow, 5)
    assert HEADER_TIMEOUT_S * 0.9 <= elapsed < HEADER_TIMEOUT_S + 3
    assert sent < len(trickle) and served >= 3
    slow.close()
    assert "no whole request head within 1 s" in limited.output()


def test_an_idle_connection_is_closed_without_an_answer(limited):
    idle = connect(limited)
    t0 = time.monotonic()
    assert idle.recv(100) == b""  # closed (after the header timeout), nothing written
    assert time.monotonic() - t0 >= HEADER_TIMEOUT_S * 0.9
    idle.close()
    still_serving(limited)


def test_a_head_in_many_reads_within_the_timeout_is_served(limited):
    sock = connect(limited)
    body = json.dumps(CHAT).encode()
    data = head("/v1/chat/completions", "POST", b"X-Padding: " + b"p" * 4000 + b"\r\n", len(body))
    for i in range(0, len(data), 1000):  # four reads over ~0.3 s: a slow head, not a stuck one
        sock.sendall(data[i:i + 1000])
        time.sleep(0.1)
    sock.sendall(body)
    r = response(sock, "POST")
    assert r.status == 200 and json.loads(r.read())["object"] == "chat.completion"
    sock.close()


# -- header size -----------------------------------------------------------------------
def test_an_oversized_head_gets_431_and_the_server_keeps_serving(limited):
    # in one piece, followed by a body (the client gets to send it all and still reads the answer)
    sock = connect(limited)
    sock.sendall(head("/v1/chat/completions", "POST", b"X-Big: " + b"b" * 100 * 1024 + b"\r\n", 1000) + b"x" * 1000)
    body = refusal(response(sock, "POST"), 431, "request_header_fields_too_large")
    assert str(MAX_HEAD) in body["error"]["message"]
    assert closed(sock, 5)
    sock.close()
    # trickled in small reads: refused as soon as the limit is passed, not at the end of the head
    sock = connect(limited)
    sock.sendall(head().removesuffix(b"\r\n"))
    sent = 0
    while not select.select([sock], [], [], 0.01)[0]:
        assert sent < 4 * MAX_HEAD, "an endless head was never refused"
        sock.sendall(b"X-Many-%d: %s\r\n" % (sent, b"m" * 1000))
        sent += 1010
    refusal(response(sock), 431, "request_header_fields_too_large")
    assert MAX_HEAD - 2048 < sent < MAX_HEAD + 2048
    sock.close()
    assert "Refused a request head over 16384 bytes" in limited.output()
    still_serving(limited)


def test_a_head_under_the_limit_is_served_whatever_the_body_size(limited):
    body = json.dumps({**CHAT, "user": "u" * 200_000}).encode()  # head + body far over the limit
    sock = connect(limited)
    sock.sendall(head("/v1/chat/completions", "POST", b"X-Pad: " + b"p" * (MAX_HEAD - 2000) + b"\r\n", len(body))
                 + body)
    r = response(sock, "POST")
    assert r.status == 200 and json.loads(r.read())["object"] == "chat.completion"
    sock.close()


# -- keep-alive and request timeouts -----------------------------------------------------------
def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(limited):
    sock = connect(limited)
    for _ in range(2):  # kept alive between requests that come in time
        sock.sendall(head())
        r = response(sock)
        assert r.status == 200 and json.loads(r.read())["object"] == "list"
        assert r.getheader("connection") != "close"
    t0 = time.monotonic()
    assert closed(sock, 5)
    assert KEEP_ALIVE_S * 0.8 <= time.monotonic() - t0 < KEEP_ALIVE_S + 3
    sock.close()


def test_request_timeout_answers_504_but_never_cuts_a_started_stream(limited):
    t0 = time.monotonic()
    with limited.http() as h:  # held 5 s by the fault: abandoned at the timeout
        r = h.post("/v1/chat/completions", json=CHAT, headers={"X-FakeAI-Fault": "timeout=5s"})
    assert r.status_code == 504 and time.monotonic() - t0 < 3
    validate_error(r.json())
    assert r.json()["error"]["code"] == "request_timeout"
    # a stream sends its headers at once: a pause longer than the timeout does not cut it
    c = limited.client()
    stream = c.chat.completions.create(**CHAT, stream=True, extra_headers={"X-FakeAI-Fault": "stall-after=1:1s"})
    t0 = time.monotonic()
    chunks = list(stream)
    assert time.monotonic() - t0 >= REQUEST_TIMEOUT_S and chunks[-1].choices[0].finish_reason
    assert c.chat.completions.create(**CHAT).choices[0].message.content


# -- connection limit and listen backlog -------------------------------------------------------
def test_connections_over_the_limit_get_503_in_openais_envelope(crowded):
    held = []
    for _ in range(MAX_CONNECTIONS):  # each served: the limit counts open connections
        sock = connect(crowded)
        sock.sendall(head())
        r = response(sock)
        assert r.status == 200
        r.read()
        held.append(sock)
    extra = connect(crowded)
    extra.sendall(head())
    r = response(extra)
    refusal(r, 503, "service_unavailable")
    assert r.getheader("retry-after") == "1"
    assert closed(extra, 5)
    extra.close()
    with pytest.raises(openai.InternalServerError) as e:  # what the SDK makes of it (it would retry)
        crowded.client().models.list()
    assert e.value.status_code == 503
    held.pop().close()  # a connection frees up: the next request is served
    assert wait_for(lambda: httpx.get(crowded.base_url + "/v1/models").status_code == 200, 10, 0.05)
    for sock in held:
        sock.close()


def test_the_listen_backlog_bounds_the_kernels_accept_queue(crowded):
    # with the server stopped, the kernel completes backlog + 1 handshakes and drops the other SYNs
    socks = []
    os.kill(crowded.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(5 * BACKLOG):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", crowded.port))
            socks.append(s)

        def connected() -> int:
            ready = select.select([], socks, [], 0)[1]
            return sum(1 for s in ready if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)

        assert wait_for(lambda: connected() >= BACKLOG + 1, 5)
        assert not wait_for(lambda: connected() > BACKLOG + 1, 0.5)  # (a dropped SYN is resent after 1 s)
    finally:
        for s in socks:
            s.close()
        os.kill(crowded.proc.pid, signal.SIGCONT)
    assert wait_for(lambda: httpx.get(crowded.base_url + "/v1/models", timeout=5).status_code == 200, 15, 0.1)
