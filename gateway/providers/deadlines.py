"""Deadlines for upstream calls without a timer per call.

A timeout in asyncio or aiohttp schedules (and then cancels) a timer on the event loop for every
request; on the gateway's hot path that was about 4 % of a request's CPU (bench/OPTIMISATIONS.md).
Upstream timeouts are seconds to minutes long and need no millisecond precision, so one task
checks every watched call each ``tick_s`` and cancels those past their deadline: a call then
costs a dict insert and a dict pop. A call overruns its deadline by at most ``tick_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from gateway.tasks import Background


class DeadlineExceeded(Exception):
    """The watched block ran past its deadline and was cancelled."""


class Deadlines:
    """``with deadlines.watch(seconds): await ...`` raises DeadlineExceeded past the deadline.

    Only the watched task is affected; a cancellation that comes from elsewhere (the client
    went away, shutdown) propagates as CancelledError as usual.
    """

    def __init__(self, tick_s: float = 0.1) -> None:
        self._tick_s = tick_s
        self._watched: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._ticker = Background("upstream-deadlines", self._tick)

    @contextlib.contextmanager
    def watch(self, seconds: float) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._ticker.start()  # on the first call: a provider has no start of its own
        self._watched[task] = loop.time() + seconds
        try:
            yield
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                task.uncancel()
                raise DeadlineExceeded from None
            raise
        finally:
            self._watched.pop(task, None)
            self._expired.discard(task)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick_s)
            if not self._watched:
                continue
            now = loop.time()
            for task, deadline in list(self._watched.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()

    async def close(self) -> None:
        await self._ticker.stop()
