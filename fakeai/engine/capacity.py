"""Admission: at most ``max_num_seqs`` running sequences, the rest wait in FIFO order.

This is the replaceable capacity component of one simulated worker; the time a
request spends waiting here is queueing time and adds to its TTFT.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Capacity:
    __slots__ = ("max_running", "running", "_waiters")

    def __init__(self, max_running: int) -> None:
        self.max_running = max_running
        self.running = 0
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> bool:
        """Take a slot; returns True if the request had to wait in the queue."""
        if self.running < self.max_running and not self._waiters:
            self.running += 1
            return False
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we gave up
            else:
                self._remove(fut)
            raise
        return True

    def _remove(self, fut: asyncio.Future) -> None:
        try:
            self._waiters.remove(fut)
        except ValueError:
            pass

    def release(self) -> None:
        """Free a slot: hand it to the oldest live waiter, if any."""
        while self._waiters and self.running <= self.max_running:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes over; running stays the same
                return
        self.running -= 1

    def resize(self, max_running: int) -> None:
        self.max_running = max_running
        while self._waiters and self.running < self.max_running:
            fut = self._waiters.popleft()
            if not fut.done():
                self.running += 1
                fut.set_result(None)
