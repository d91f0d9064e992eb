"""Upstream deadlines without a timer per call (gateway/providers/deadlines.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.providers.deadlines import DeadlineExceeded, Deadlines


async def test_a_block_past_its_deadline_is_stopped_within_a_tick() -> None:
    d = Deadlines(tick_s=0.05)
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceeded), d.watch(0.2):
        await asyncio.sleep(5)
    assert 0.2 <= time.monotonic() - t0 < 0.5
    await asyncio.sleep(0.01)  # the task itself is not left cancelled
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await d.close()


async def test_blocks_in_time_are_untouched_and_others_cancel_normally() -> None:
    d = Deadlines(tick_s=0.02)

    async def quick(i: int) -> int:
        with d.watch(1.0):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # long after the block: nothing may cancel this
        return i

    assert await asyncio.gather(*(quick(i) for i in range(50))) == list(range(50))

    async def waits() -> None:
        with d.watch(10.0):
            await asyncio.sleep(10)

    task = asyncio.create_task(waits())
    await asyncio.sleep(0.05)
    task.cancel()  # e.g. the client went away: a CancelledError, not a deadline
    with pytest.raises(asyncio.CancelledError):
        await task
    await d.close()
