"""``Periodic``: a background round on the event loop every so often, until stopped."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable

log = logging.getLogger("fakeai")


class Periodic:
    """Calls ``fn`` (plain or async) every ``interval`` seconds once started. A failing round
    is logged (``what`` names it) and the next one retries: a store hiccup or a full disk
    never ends the loop."""

    def __init__(self, interval: float, fn: Callable, what: str) -> None:
        self.interval, self.fn, self.what = interval, fn, what
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                result = self.fn()
                if inspect.isawaitable(result):
                    await result
            except Exception as e:  # noqa: BLE001 - see the class docstring
                log.warning("%s failed: %s", self.what, e)
