"""A dcgm-exporter lookalike listener: ``GET /metrics`` (and ``/health``) on a port of its own.

A few lines of HTTP/1.1 on the server's own event loop, so it reads the same
cluster as every other route without threads or locks. Keep-alive is honoured;
anything but GET /metrics and /health gets 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_UNAUTHORIZED = (b'{"error":{"message":"Missing or invalid API key: send Authorization: Bearer <key>.",'
                 b'"type":"invalid_request_error","param":null,"code":"invalid_api_key"}}')


class MetricsPort:
    def __init__(self, host: str, port: int, render: Callable[[], Awaitable[bytes]],
                 allowed: Callable[[str | None], Awaitable[bool]] | None = None) -> None:
        self.host, self.port = host, port
        self._render = render
        self._allowed = allowed  # (Authorization header) -> may /metrics be answered
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, headers = head.decode("latin-1").partition("\r\n")
                method, path, version = (request_line.split(" ") + ["", "", ""])[:3]
                close = version == "HTTP/1.0" or "connection: close" in headers.lower()
                path = path.split("?", 1)[0]
                if method == "GET" and path == "/metrics" and not await self._may(headers):
                    status, ctype, body = b"401 Unauthorized", b"application/json", _UNAUTHORIZED
                elif method == "GET" and path == "/metrics":
                    status, ctype, body = b"200 OK", CONTENT_TYPE, await self._render()
                elif method == "GET" and path == "/health":
                    status, ctype, body = b"200 OK", b"text/plain; charset=utf-8", b"OK"
                else:
                    status, ctype, body = b"404 Not Found", b"text/plain; charset=utf-8", b"404 page not found\n"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                             + str(len(body)).encode() + (b"\r\nConnection: close" if close else b"")
                             + b"\r\n\r\n" + body)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _may(self, headers: str) -> bool:
        if self._allowed is None:
            return True
        authorization = None
        for line in headers.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "authorization":
                authorization = value.strip()
        return await self._allowed(authorization)
