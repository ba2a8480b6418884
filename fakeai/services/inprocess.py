"""Calling the server's own ASGI app from inside the process, as a client would over HTTP.

The request goes through the whole middleware stack and the route (request ids,
validation, errors, generation, usage accounting, the cluster), but no socket.
``state`` seeds ``scope["state"]``: that is how an in-process caller says what
an outside client cannot (``batch_id``: this request is a batch line).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

log = logging.getLogger("fakeai")


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


SERVER_ERROR = (b'{"error":{"message":"The server had an error while processing your request. Sorry about '
                b'that!","type":"server_error","param":null,"code":null}}')
_NEVER = asyncio.Event()  # the in-process client never disconnects


async def call_app(app, method: str, path: str, body: bytes = b"",
                   headers: list[tuple[bytes, bytes]] | None = None, state: dict | None = None) -> Reply:
    """One request to ``app``; the whole reply, even a 500 if the app raised."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 0), "server": ("fakeai", 0),
        "headers": [(b"host", b"fakeai"), (b"content-length", str(len(body)).encode()), *(headers or ())],
        "state": dict(state or {}),
    }
    sent_body = False

    async def receive():
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await _NEVER.wait()

    status, out_headers, parts = 0, {}, []

    async def send(message):
        nonlocal status, out_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers = dict(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception:  # the app already answered 500 (ServerErrorMiddleware re-raises); keep its reply
        log.exception("in-process %s %s failed", method, path)
        if not status:
            status, parts = 500, [SERVER_ERROR]
    return Reply(status, out_headers, b"".join(parts))
