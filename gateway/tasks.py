"""Background tasks of long-lived services: one named task each, started once, stopped by
cancelling it and waiting for it; and a set of fire-and-forget tasks that shutdown can wait for.

A service's loop is its own (what a tick does, how a failure is logged); how it is started and
stopped is the same everywhere, and lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """``run()`` in a task named ``name``: ``start`` is idempotent, ``stop`` cancels and waits."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._main(), name=self._name)

    async def _main(self) -> None:
        await self._run()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Spawned:
    """Tasks started and forgotten (a shielded settle), kept until done so that they are not
    garbage-collected mid-way and shutdown can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self, timeout_s: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
