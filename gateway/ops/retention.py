"""Retention: a background task that deletes expired request records and reviewed queue items.

Without it the log database grows with every request forever. Each pass deletes in batches of
``batch_size`` rows (one short transaction each, oldest first) and yields to the event loop
between batches, so a first pass over a year of backlog never holds a long lock or starves the
record writer. A failed pass is logged and retried at the next interval; several replicas may
run it at once, since deleting an already deleted row is a no-op.

Open review items are never expired: they are work nobody has done yet. Reviewed items expire
``reviewed_days`` after their last verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.settings import RetentionSettings
from gateway.stores.logs import LogStore
from gateway.tasks import Background

log = logging.getLogger("gateway.retention")

DAY_S = 86400.0
#: Upper bound on batches per kind per pass, so one pass always ends; the rest waits a pass.
MAX_BATCHES_PER_PASS = 1000


@dataclass(frozen=True, slots=True)
class PurgeResult:
    requests: int
    flags: int


class Retention:
    """``start()`` launches the loop, ``stop()`` cancels it; ``run_once()`` is one whole pass."""

    def __init__(self, store: LogStore, settings: RetentionSettings, *,
                 clock: Callable[[], float] = time.time,
                 first_delay_s: float | None = None) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        # The first pass waits a little, so a starting replica serves before it sweeps.
        self._first_delay_s = (min(60.0, settings.interval_s) if first_delay_s is None
                               else first_delay_s)
        self._task = Background("retention", self._loop)
        self.passes = 0

    @property
    def enabled(self) -> bool:
        return (self._settings.requests_days is not None
                or self._settings.reviewed_days is not None)

    def start(self) -> None:
        if self.enabled:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _loop(self) -> None:
        await asyncio.sleep(self._first_delay_s)
        while True:
            try:
                result = await self.run_once()
                if result.requests or result.flags:
                    log.info("retention: deleted %d request records and %d reviewed items",
                             result.requests, result.flags)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("retention pass failed (%s); retrying in %.0fs",
                            type(exc).__name__, self._settings.interval_s)
            await asyncio.sleep(self._settings.interval_s)

    async def run_once(self) -> PurgeResult:
        """Delete everything expired now, batch by batch; returns the counts deleted."""
        now = self._clock()
        s = self._settings
        requests = flags = 0
        if s.requests_days is not None:
            before = now - s.requests_days * DAY_S
            requests = await self._drain(lambda: self._store.purge_requests(before, s.batch_size))
        if s.reviewed_days is not None:
            before = now - s.reviewed_days * DAY_S
            flags = await self._drain(
                lambda: self._store.purge_reviewed_flags(before, s.batch_size))
        self.passes += 1
        return PurgeResult(requests=requests, flags=flags)

    async def _drain(self, batch: Callable[[], Awaitable[int]]) -> int:
        total = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            n = await batch()
            total += n
            if n < self._settings.batch_size:
                break
            await asyncio.sleep(0)  # let the record writer and queries in between batches
        return total
