"""One shared timer for every waiting stream.

Thousands of streams each waiting for their next token would otherwise put one
timer handle per token per stream on the event loop's heap. ``Ticker`` groups
waiters into slots of ``resolution`` seconds and arms one loop timer per
occupied slot; waking is a walk over that slot's futures. A waiter never wakes
before its deadline, and at most one resolution after it.
"""

from __future__ import annotations

import asyncio

from .schedule import slot_of


class Ticker:
    __slots__ = ("_loop", "_res", "_slots")

    def __init__(self, resolution: float = 0.001) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._res = resolution
        self._slots: dict[int, list[asyncio.Future]] = {}

    def time(self) -> float:
        return self._get_loop().time()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    @property
    def pending_slots(self) -> int:
        return len(self._slots)

    async def sleep_until(self, when: float) -> None:
        loop = self._get_loop()
        if when <= loop.time():
            return
        slot = slot_of(when, self._res)
        fut = loop.create_future()
        waiters = self._slots.get(slot)
        if waiters is None:
            self._slots[slot] = [fut]
            loop.call_at(slot * self._res, self._fire, slot)
        else:
            waiters.append(fut)
        await fut

    def _fire(self, slot: int) -> None:
        for fut in self._slots.pop(slot, ()):
            if not fut.done():
                fut.set_result(None)
