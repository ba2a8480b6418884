"""Pure-ASGI middleware (no per-request task): ids, timing headers and the body size limit."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from .errors import APIError, error_body, send_json

_HEADER_ID = b"x-request-id"
log = logging.getLogger("fakeai")


class RequestMeta:
    """Adds ``x-request-id`` and ``openai-processing-ms``; rejects bodies over the limit with 413.

    The limit is ``max_body`` unless ``route_limits`` ((path prefix, bytes), first match)
    names the route; ``on_oversize(ip)`` hears of every 413 (abuse detection);
    ``observer.begin(scope)`` (the metrics statistics) returns a trace that sees the response
    start, an error's first body message, and the end."""

    def __init__(self, app, max_body: int, route_limits: tuple[tuple[str, int], ...] = (),
                 on_oversize=None, observer=None) -> None:
        self.app = app
        self.max_body = max_body
        self.route_limits = route_limits
        self.on_oversize = on_oversize
        self.observer = observer

    def _limit(self, path: str) -> int:
        for prefix, limit in self.route_limits:
            if path.startswith(prefix):
                return limit
        return self.max_body

    def _oversize(self, scope) -> None:
        if self.on_oversize is not None:
            client = scope.get("client")
            self.on_oversize(client[0] if client else "unknown")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = "req_" + os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["arrival"] = asyncio.get_running_loop().time()  # the engine's clock
        if "batch_id" not in state:  # files/batches: only the in-process batch runner marks batch lines
            _strip_batch_header(scope)
        # files/batches: file uploads stream to the store under their own limits (max_file_bytes,
        # the 64 MB upload part limit), so the global body limit does not apply to them
        limit = None if _own_limit(scope["path"]) else self._limit(scope["path"])
        obs = self.observer.begin(scope) if self.observer is not None else None
        for k, v in (scope["headers"] if limit is not None else ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    self._oversize(scope)
                    if obs is not None:
                        obs.refused(413)
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
                    *state.get("response_headers", ()),  # added by inner layers (rate limits)
                ]
                if obs is not None:
                    obs.start(message)
            elif obs is not None and obs.error:
                obs.body(message)
            await send(message)

        received = 0

        async def receive_limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if limit is not None and received > limit:
                    self._oversize(scope)
                    raise APIError(413, _too_large(limit), code="request_too_large")
            return message

        failed = True
        try:
            await self.app(scope, receive_limited, send_with_headers)
            failed = False
        except Exception:
            if started:
                raise
            # an error that escaped every layer (routes' errors are answered where they arise)
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await _send_500(send_with_headers)
        finally:
            if obs is not None:
                obs.end(failed)


def _own_limit(path: str) -> bool:
    """``POST /v1/files`` and ``/v1/uploads/{id}/parts`` (files/batches)."""
    return path == "/v1/files" or (path.startswith("/v1/uploads/") and path.endswith("/parts"))


_BATCH_HEADER = b"x-fakeai-batch-id"


def _strip_batch_header(scope) -> None:
    headers = scope["headers"]
    if any(k == _BATCH_HEADER for k, _ in headers):  # an outside client cannot pose as a batch line
        scope["headers"] = [(k, v) for k, v in headers if k != _BATCH_HEADER]


def _too_large(limit: int) -> str:
    return f"Request body too large: the limit is {limit} bytes."


async def _send_413(send, rid: str, limit: int) -> None:
    await send_json(send, 413, error_body(_too_large(limit), code="request_too_large"),
                    [(_HEADER_ID, rid.encode()), (b"connection", b"close")])


async def _send_500(send) -> None:
    await send_json(send, 500, error_body("The server had an error while processing your request. Sorry "
                                          "about that!", type="server_error"))
