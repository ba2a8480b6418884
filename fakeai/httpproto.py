"""uvicorn's httptools protocol plus the connection limits it lacks.

* **Header timeout** (``header_timeout_s``): a connection must deliver a whole request
  head within this long of opening, and of the first byte of every later request
  head; otherwise it gets 408 (when part of a head arrived) and is closed. uvicorn has
  no such limit, so a client trickling header bytes (slowloris), or one that opens a
  connection and sends nothing, holds it for ever.
* **Header size** (``max_header_bytes``): a larger request head gets 431 and the
  connection closed. llhttp has no limit of its own and httptools gathers each header
  in memory, so without one a single header may grow without bound.
* **Connection limit** (``max_connections``): a request that arrives while this many
  connections are open (or requests in flight) gets 503 in OpenAI's error envelope,
  with ``retry-after``, and its connection closed. (uvicorn's ``limit_concurrency``
  answers ``text/plain`` and refuses one connection early.)
* **Request timeout** (``request_timeout_s``): a response that has not started within
  this long is abandoned for a 504 in OpenAI's envelope (see ``RequestTimeout``).

The hot path stays uvicorn's: a request head that arrives in one read, as virtually
all do, costs a few attribute writes more. Timers are armed once per connection (the
first head) and otherwise only for a head that spans reads; the size is counted only
for such heads or for a read larger than the limit.

Used through ``serving.uvicorn_options``: ``http=functools.partial(Protocol, limits=Limits(...))``
(picklable, so it also reaches uvicorn's worker processes).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .api.errors import error_body, send_json
from .transport import CoalescingTransport


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout_s: float = 10.0  # 0: none
    max_header_bytes: int = 64 * 1024
    max_connections: int = 0  # 0: none
    request_timeout_s: float = 0.0  # 0: none


def error_response(status: int, message: str, type: str, code: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response, OpenAI's error envelope, that closes the connection."""
    body = error_body(message, type, code=code)
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n%s\r\n" % (status, HTTPStatus(status).phrase.encode(), len(body), extra)) + body


def _head_length(data: bytes) -> int:
    """Bytes of ``data`` up to the end of the request head in it (all of them if it does
    not end there). llhttp accepts only CRLF line ends, so the end is a blank CRLF line."""
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end + 4


class Protocol(HttpToolsProtocol):
    def __init__(self, *args, limits: Limits, **kw) -> None:
        super().__init__(*args, **kw)
        self._header_timeout = limits.header_timeout_s
        self._max_head = limits.max_header_bytes
        self._max_connections = limits.max_connections
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False  # a request head has begun and not ended
        self._head_bytes = -1  # bytes of a head under way since an earlier read, else -1
        if limits.request_timeout_s:
            self.app = RequestTimeout(self.app, limits.request_timeout_s)
        self._app = self.app

    # -- connection -------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        # every write of one loop turn leaves in one system call (fakeai/transport.py)
        super().connection_made(CoalescingTransport(transport, self.loop))
        self._arm()  # the first head must arrive in time too

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        used = self._head_bytes
        n = len(data)
        if used >= 0:  # a head under way since an earlier read
            if used + n > self._max_head and used + _head_length(data) > self._max_head:
                return self._refuse_head()
            self._head_bytes = used + n  # on_headers_complete resets it if the head ends here
        elif (n > self._max_head and (self.cycle is None or not self.cycle.more_body)
              and _head_length(data) > self._max_head):  # a large read starting a request, not a body's
            return self._refuse_head()
        super().data_received(data)
        if self._in_head and self._head_bytes < 0:  # a head began in this read and goes on
            self._head_bytes = n  # at most this much of it so far
            self._arm()

    # -- parser callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = -1
        if self._head_timer is not None:
            self._disarm()
        limit = self._max_connections
        if limit and (len(self.connections) > limit or len(self.tasks) >= limit):
            self.app = Busy(limit)  # what the request below is served with
            try:
                super().on_headers_complete()
            finally:
                self.app = self._app
            return
        super().on_headers_complete()

    # -- limits ---------------------------------------------------------------------------
    def _arm(self) -> None:
        if self._header_timeout and self._head_timer is None:
            self._head_timer = self.loop.call_later(self._header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # a pipelined head behind a response still going: judge it after that
            return
        if not self._in_head:  # an idle new connection just closes, as an idle keep-alive one does
            self.transport.close()
            return
        self.logger.warning("Closing %s: no whole request head within %g s.", self._peer(), self._header_timeout)
        self._refuse(error_response(408, f"The request head did not arrive within {self._header_timeout:g} s.",
                                    "invalid_request_error", "request_timeout"))

    def _refuse_head(self) -> None:
        if self._head_bytes > self._max_head:
            return  # refused already, behind a response still going: dropped
        self.logger.warning("Refused a request head over %d bytes from %s.", self._max_head, self._peer())
        self._refuse(error_response(
            431, f"Request header fields too large: the request head exceeds {self._max_head} bytes.",
            "invalid_request_error", "request_header_fields_too_large"))

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` and hand the connection to a ``Drain`` (this protocol is done with it)."""
        self._disarm()
        self._unset_keepalive_if_required()
        self._in_head = False
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined request behind a response still going: that response ends the
            # connection, and what else arrives meanwhile is dropped (see _refuse_head)
            self.cycle.keep_alive = False
            self._head_bytes = self._max_head + 1
            return
        self.connections.discard(self)
        self.transport.write(response)
        self.transport.write_eof()
        self.transport.set_protocol(Drain(self.transport, self.loop))

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


class Drain(asyncio.Protocol):
    """A refused connection: what the client still sends is read and dropped for up to
    ``LINGER_S``, so that it reads the answer rather than a reset (a close with unread
    input sends RST); then, or at the client's end of input, the connection closes."""

    LINGER_S = 2.0

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = loop.call_later(self.LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc) -> None:
        self.timer.cancel()


class Busy:
    """The ASGI app of a request over the connection limit: 503, connection closed."""

    __slots__ = ("body",)

    def __init__(self, limit: int) -> None:
        self.body = error_body(f"The server is overloaded: it is at its limit of {limit} connections. Please "
                               "retry shortly.", "server_error", code="service_unavailable")

    async def __call__(self, scope, receive, send) -> None:
        await send_json(send, 503, self.body, [(b"retry-after", b"1"), (b"connection", b"close")])


class RequestTimeout:
    """ASGI wrapper: a request whose response has not started within ``timeout_s`` is
    cancelled and answered 504. A started response (a stream sends its headers at once)
    is never cut."""

    def __init__(self, app, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s
        self.body = error_body(f"The request timed out: no response within {timeout_s:g} s.", "server_error",
                               code="request_timeout")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_started(message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                deadline.reschedule(None)
            await send(message)

        try:
            async with asyncio.timeout(self.timeout_s) as deadline:
                await self.app(scope, receive, send_started)
        except TimeoutError:
            if started or not deadline.expired():  # cut mid-response, or the app's own timeout
                raise
            await send_json(send, 504, self.body)
