"""The shared budget store behind a bound on every call, and whether it is away (degraded mode).

Fails closed: a call that does not answer within ``stores.budget_timeout_s`` (or fails) raises
``StoreUnavailable`` and marks the store away. While it is away, requests are refused with 503,
except for teams with ``on_store_error: allow``, which the local limiter of the ``Outage``
serves; one request per ``PROBE_INTERVAL_S`` (and the maintenance task) tries the store again,
and the first answer marks it back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.errors import StoreUnavailable
from gateway.stores.budget import BudgetStore, StoreError
from gateway.stores.budget_memory import MemoryBudgetStore

log = logging.getLogger("gateway.budget")
T = TypeVar("T")

PROBE_INTERVAL_S = 1.0  # while the store is away, how often one request tries it again


@dataclass(slots=True)
class Outage:
    """The shared store is away: since when, when to try it again, and the local limiter that
    serves the teams that allow it meanwhile."""

    since: float
    next_probe: float
    local: MemoryBudgetStore = field(default_factory=MemoryBudgetStore)


class StoreLink:
    def __init__(self, store: BudgetStore, timeout_s: float, on_error: Callable[[], None],
                 on_back: Callable[[], None]) -> None:
        self.store = store
        # An in-process store answers without awaiting anything: it can neither hang nor be
        # interrupted half-way, so its calls skip the timeout (and the shielded settle task).
        self.inline = isinstance(store, MemoryBudgetStore)
        self._timeout = timeout_s
        self._on_error = on_error
        self._on_back = on_back
        self.outage: Outage | None = None

    async def call(self, aw: Awaitable[T]) -> T:
        """``aw`` (a store call) bounded in time; its failure is ``StoreUnavailable``."""
        if self.inline:
            return await aw
        try:
            async with asyncio.timeout(self._timeout):  # no extra task, unlike wait_for in 3.11
                return await aw
        except (TimeoutError, StoreError, OSError) as exc:
            self._on_error()
            self._down()
            raise StoreUnavailable("The budget store is unavailable; try again shortly.") from exc

    def serving_locally(self) -> Outage | None:
        """The outage, while it is not yet time to try the store again."""
        o = self.outage
        return o if o is not None and time.monotonic() < o.next_probe else None

    def probe_due(self) -> bool:
        return self.outage is not None and time.monotonic() >= self.outage.next_probe

    def answered(self) -> None:
        """The store answered: if it was away, it is back (and ``on_back`` reconciles)."""
        if self.outage is not None:
            log.warning("budget store is back after %.1fs", time.monotonic() - self.outage.since)
            self.outage = None
            self._on_back()

    def _down(self) -> None:
        now = time.monotonic()
        if self.outage is None:
            log.error("budget store unavailable; failing closed (teams with on_store_error: "
                      "allow are served by a local limiter)")
            self.outage = Outage(now, now + PROBE_INTERVAL_S)
        else:
            self.outage.next_probe = now + PROBE_INTERVAL_S
