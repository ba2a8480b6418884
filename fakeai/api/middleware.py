"""Pure-ASGI middleware (no per-request task): ids, timing headers and the body size limit."""

from __future__ import annotations

import asyncio
import os
import time

from .errors import APIError, error_body

_HEADER_ID = b"x-request-id"


class RequestMeta:
    """Adds ``x-request-id`` and ``openai-processing-ms``; rejects bodies over the limit with 413."""

    def __init__(self, app, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = "req_" + os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["arrival"] = asyncio.get_running_loop().time()  # the engine's clock
        limit = self.max_body
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _send_413(send, rid, limit)
                break
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                ms = int((time.perf_counter() - t0) * 1000)
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", ()),
                    (_HEADER_ID, rid.encode()),
                    (b"openai-processing-ms", str(ms).encode()),
                    (b"openai-version", b"2020-10-01"),
                ]
            await send(message)

        received = 0

        async def receive_limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise APIError(413, _too_large(limit), code="request_too_large")
            return message

        await self.app(scope, receive_limited, send_with_headers)


def _too_large(limit: int) -> str:
    return f"Request body too large: the limit is {limit} bytes."


async def _send_413(send, rid: str, limit: int) -> None:
    body = error_body(_too_large(limit), code="request_too_large")
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (_HEADER_ID, rid.encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
