"""Serving while the shared budget store is away, for the teams that allow it, and adding back.

The local limiter is an in-process store (one per outage) seeded with the last numbers this
replica saw in the shared store, so a team cannot spend its whole budget again on every replica.
What it served is added to the shared store once the store answers again: amounts move into a
batch with a fixed id before they are sent, and a failed batch is resent with the same id; the
store applies a batch id once, so nothing counts twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from gateway.budget.link import StoreLink
from gateway.budget.scopes import MICROS
from gateway.stores.budget import BudgetLine, ReserveRequest, ReserveResult, SettleRequest
from gateway.stores.budget_memory import MemoryBudgetStore
from gateway.stores.budget_rules import ns

log = logging.getLogger("gateway.budget")


class LocalLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_used: dict[tuple[str, str], int] = {}
        self._unsynced: dict[tuple[str, str], list[int]] = {}  # (team, key) -> [amount, expire]
        self._batches: dict[str, tuple[str, list[tuple[str, int, int]]]] = {}
        self._sync_lock = asyncio.Lock()

    @property
    def unsynced(self) -> bool:
        """Whether spend served locally still waits to be added to the shared store."""
        return bool(self._unsynced or self._batches)

    def saw(self, team: str, lines: list[BudgetLine], used: tuple[int, ...]) -> None:
        """The shared store's counters after a reservation: where a local limiter starts."""
        for line, u in zip(lines, used, strict=True):
            self._last_used[(team, line.key)] = u

    async def reserve(self, local: MemoryBudgetStore, req: ReserveRequest) -> ReserveResult:
        for line in req.budgets:  # start from the last shared numbers this replica saw
            if ns(req.team, line.key) not in local.state.counters:
                seen = self._last_used.get((req.team, line.key), 0)
                local.state.add(ns(req.team, line.key), seen, 0, 0)
        return await local.reserve(req)

    def settled(self, req: SettleRequest) -> None:
        """A hold of the local limiter settled: its spend is to be added to the shared store."""
        for line in req.budgets:
            actual = req.actual_usd if line.metric == "usd" else req.actual_tok
            if actual:
                entry = self._unsynced.setdefault((req.team, line.key), [0, line.expire_at_s])
                entry[0] += actual

    async def reconcile(self, link: StoreLink) -> None:
        """Add the spend served locally to the shared store (see the module docstring)."""
        async with self._sync_lock:
            for (team, key), (amount, expire) in list(self._unsynced.items()):
                batch = self._batches.setdefault(team, (secrets.token_hex(8), []))
                batch[1].append((key, amount, expire))
                del self._unsynced[(team, key)]
            for team, (batch_id, entries) in list(self._batches.items()):
                await link.call(link.store.add_spent(team, batch_id, entries,
                                                     int(self._clock() * MICROS)))
                del self._batches[team]
                log.warning("reconciled degraded spend of team %s into the budget store", team)
