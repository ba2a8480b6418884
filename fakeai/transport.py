"""Coalesced writes: one ``send`` system call per burst (used by ``fakeai.httpproto.Protocol``).

uvicorn writes a response's head and its body with two ``transport.write`` calls,
and uvloop turns each into a system call at once: on a small non-streaming answer
the two writes cost a fifth of the server's CPU (docs/benchmarks.md). Here every
write made during one turn of the event loop is joined and handed to the socket at
the end of that turn (``call_soon``): a head and its body leave together, and so do
stream chunks that fall due in the same tick. Nothing waits longer than the rest of
the current loop iteration; closing or aborting flushes or drops what is pending.
"""

from __future__ import annotations

import asyncio


class CoalescingTransport:
    """A transport that buffers writes until the end of the current loop iteration."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush)
        else:
            pending.append(data)

    def writelines(self, data) -> None:
        for chunk in data:
            self.write(chunk)

    def _flush(self) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        size = self._transport.get_write_buffer_size()
        return size + sum(map(len, self._pending)) if self._pending else size

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

