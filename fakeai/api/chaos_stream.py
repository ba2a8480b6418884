"""Mid-stream faults: a stand-in for ``send`` that changes a streamed (SSE) answer.

It sees the response's body writes, splits them into SSE events (one write may
carry many when steps coalesce) and, counting the events it has passed on:

* ``stall-after=N:D`` pauses D before event N+1 (``stall=D``: before the first);
* ``drip=D`` waits D before every event, sending each on its own;
* ``malformed-after=N`` sends event N+1 cut in half (its JSON broken);
* ``error-after=N`` sends the API's streaming error event instead of event N+1 and
  ends the stream there (no ``[DONE]`` / ``message_stop``);
* ``cut-after=N`` drops the connection after N events, without ending the body.

A fault whose event count is never reached does not fire and is not counted.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from ..security.fault_spec import Fault

_OPENAI_ERROR = (b'data: {"error":{"message":"The server had an error while processing your request. Sorry '
                 b'about that!","type":"server_error","param":null,"code":null}}\n\n')
_ANTHROPIC_ERROR = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'


class StreamCut(BaseException):
    """Drops the connection mid-response: uvicorn closes the socket without ending the body.

    A BaseException so that no error handler turns it into an answer; its log line is muted."""


class _QuietCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info
        return not (exc and isinstance(exc[1], StreamCut))


def mute_cut_logs() -> None:
    """Keep uvicorn from logging an injected cut as an application error."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietCuts) for f in logger.filters):
        logger.addFilter(_QuietCuts())


def error_event(dialect: str, seq: int) -> bytes:
    """The streaming error event of each API (``seq``: events sent so far)."""
    if dialect == "anthropic":
        return _ANTHROPIC_ERROR
    if dialect == "responses":
        return b"event: error\ndata: " + orjson.dumps({
            "type": "error", "code": "server_error", "param": None, "sequence_number": seq,
            "message": "The server had an error while processing your request. Sorry about that!"}) + b"\n\n"
    return _OPENAI_ERROR


def malformed(event: bytes) -> bytes:
    """The event with its data cut in half: no longer valid JSON."""
    i = event.find(b"data: ")
    if i < 0:
        return event[: max(1, len(event) // 2)] + b"\n\n"
    payload = event[i + 6:].rstrip(b"\n")
    return event[: i + 6] + payload[: max(1, len(payload) // 2)] + b"\n\n"


class StreamFaults:
    """Applies ``fault`` to the body writes of one SSE response, through ``send``."""

    __slots__ = ("fault", "dialect", "send", "record", "sent", "rest", "stalled", "dripped", "ended")

    def __init__(self, fault: Fault, dialect: str, send, record) -> None:
        self.fault, self.dialect, self.send, self.record = fault, dialect, send, record
        self.sent = 0  # events passed on
        self.rest = b""  # an incomplete event, waiting for the rest of it
        self.stalled = self.dripped = self.ended = False

    async def _write(self, out: list[bytes], more: bool = True) -> None:
        if out or not more:
            await self.send({"type": "http.response.body", "body": b"".join(out), "more_body": more})
            out.clear()

    async def body(self, message: dict) -> None:
        if self.ended:
            return  # an error event closed the stream: the rest is dropped
        f = self.fault
        more = message.get("more_body", False)
        events = (self.rest + message.get("body", b"")).split(b"\n\n")
        self.rest = events.pop()
        out: list[bytes] = []
        for ev in events:
            ev += b"\n\n"
            n = self.sent
            if f.stall_after == n and not self.stalled:
                self.stalled = True
                self.record("stall")
                await self._write(out)
                await asyncio.sleep(f.stall)
            if f.cut_after == n:
                await self._write(out)
                self.record("cut")
                mute_cut_logs()
                raise StreamCut()
            if f.error_after == n:
                self.record("error_event")
                out.append(error_event(self.dialect, n))
                self.ended = True
                return await self._write(out, more=False)
            if f.malformed_after == n:
                self.record("malformed")
                ev = malformed(ev)
            if f.drip:
                if not self.dripped:
                    self.dripped = True
                    self.record("drip")
                await self._write(out)
                await asyncio.sleep(f.drip)
            out.append(ev)
            self.sent = n + 1
        if not more and self.rest:
            out.append(self.rest)
            self.rest = b""
        await self._write(out, more)
