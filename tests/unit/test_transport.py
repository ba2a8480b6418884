"""CoalescingTransport: writes of one loop turn leave in one write; nothing is lost or late."""

from __future__ import annotations

import asyncio

from fakeai.transport import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = self.eof = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 7

    def pause_reading(self) -> None:
        self.paused = True


def run(coro):
    return asyncio.run(coro)


def test_writes_of_one_turn_leave_together_and_in_order():
    async def main():
        raw = FakeTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        t.writelines([b"-a", b"-b"])
        assert raw.writes == []  # nothing yet: the turn is not over
        assert t.get_write_buffer_size() == 7 + len(b"HTTP/1.1 200 OK\r\n\r\nbody-a-b")
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody-a-b"]
        t.write(b"next")  # a later turn: its own write
        await asyncio.sleep(0)
        assert raw.writes[1:] == [b"next"]
    run(main())


def test_close_flushes_first_and_abort_drops():
    async def main():
        loop = asyncio.get_running_loop()
        raw = FakeTransport()
        t = CoalescingTransport(raw, loop)
        t.write(b"last words")
        t.close()
        assert raw.writes == [b"last words"] and raw.closed
        await asyncio.sleep(0)
        assert raw.writes == [b"last words"]  # the scheduled flush finds nothing left

        raw2 = FakeTransport()
        t2 = CoalescingTransport(raw2, loop)
        t2.write(b"never sent")
        t2.abort()
        await asyncio.sleep(0)
        assert raw2.writes == [] and raw2.aborted

        raw3 = FakeTransport()
        t3 = CoalescingTransport(raw3, loop)
        t3.write(b"x")
        t3.write_eof()
        assert raw3.writes == [b"x"] and raw3.eof
    run(main())


def test_a_transport_closed_meanwhile_gets_no_write_and_other_calls_pass_through():
    async def main():
        raw = FakeTransport()
        t = CoalescingTransport(raw, asyncio.get_running_loop())
        t.write(b"late")
        raw.closed = True  # the peer went away before the turn ended
        await asyncio.sleep(0)
        assert raw.writes == []
        t.pause_reading()
        assert raw.paused and t.is_closing()
    run(main())
