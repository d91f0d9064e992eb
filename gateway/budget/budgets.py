"""Budgets and rate limits: the service the request path and the admin API use.

``reserve(principal, estimate) -> Hold`` before the upstream call, and the hold's ``settle`` /
``release`` / ``top_up`` after: that money path is ``ledger``, and reads on its own. This module
builds the parts and runs what keeps them sound in the background: renewing the holds of
requests still running (a hold nobody renews expires in the store after
``stores.budget_hold_ttl_s``, so a crashed replica cannot pin a budget), probing a store that is
away, retrying settles it missed, and adding back what was served while it was away.

Fails closed: when the store does not answer within ``stores.budget_timeout_s`` the request is
refused with 503 ``store_unavailable`` (``link``), unless the team says
``on_store_error: allow``; then the replica serves against a local limiter seeded with the last
numbers it saw, marks responses ``x-gateway-degraded``, and adds what it served to the store
once the store answers again (``degraded``). Run-time changes of a team's budget (PATCH) are
``config``; threshold alerts ``alerts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.auth import Principal
from gateway.budget.alerts import ThresholdAlerts
from gateway.budget.config import TeamConfigs
from gateway.budget.degraded import LocalLimiter
from gateway.budget.hold import Hold
from gateway.budget.ledger import Ledger
from gateway.budget.link import StoreLink
from gateway.budget.scopes import MICROS
from gateway.budget.stats import BudgetStats
from gateway.errors import StoreUnavailable
from gateway.ops.alerts import AlertSender
from gateway.pricing import Estimate
from gateway.settings import Settings
from gateway.stores.backends import open_budget_store
from gateway.stores.budget import BudgetStore
from gateway.tasks import Background

log = logging.getLogger("gateway.budget")


class Budgets:
    """Every team's budgets and limits, built once in ``create_app``."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 store: BudgetStore | None = None, alerts: AlertSender | None = None) -> None:
        teams = {t.name: t for t in settings.teams}
        self._ttl_us = int(settings.stores.budget_hold_ttl_s * MICROS)
        self._workers = settings.server.workers
        self._store_url = settings.stores.budgets
        self.stats = BudgetStats()
        self._link = StoreLink(store if store is not None else open_budget_store(settings.stores),
                               settings.stores.budget_timeout_s, on_error=self._store_error,
                               on_back=self._store_back)
        self._local = LocalLimiter(clock)
        self._configs = TeamConfigs(teams, self._link, clock)
        self._alerts = ThresholdAlerts(alerts if alerts is not None else AlertSender())
        self._ledger = Ledger(teams, self._link, self._local, self._configs, self._alerts,
                              self.stats, clock=clock, ttl_us=self._ttl_us)
        self._maintenance = Background("budget-maintenance", self._maintain)

    @property
    def alerts(self) -> AlertSender:
        return self._alerts.sender

    # lifecycle

    async def open(self) -> None:
        if self._workers > 1 and self._store_url.startswith("memory://"):
            log.warning("stores.budgets is memory:// with %d workers: each worker enforces the "
                        "budgets on its own; use sqlite:// or redis:// to share them",
                        self._workers)
        await self._link.store.open()
        await self.alerts.start()
        self._maintenance.start()

    async def close(self) -> None:
        await self._maintenance.stop()
        await self._ledger.settles.wait(timeout_s=5.0)
        with contextlib.suppress(Exception):  # a store away at shutdown: holds expire anyway
            await self._ledger.retry_settles()
            await self._local.reconcile(self._link)
        await self.alerts.close()
        await self._link.store.close()

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store does not answer (for /readyz)."""
        await self._link.call(self._link.store.ping())

    @property
    def degraded(self) -> bool:
        return self._link.outage is not None

    @property
    def unsynced(self) -> bool:
        """Whether spend served while degraded still waits to be added to the store."""
        return self._local.unsynced

    def is_live(self, hold_id: str) -> bool:
        """Whether this replica still renews the hold (its request has not ended)."""
        return hold_id in self._ledger.live

    def metrics(self) -> dict[str, float]:
        """Prometheus samples (name -> value); ``*_total`` are counters, the rest gauges."""
        s = self.stats
        return {
            "gateway_budget_degraded": 1.0 if self.degraded else 0.0,
            "gateway_budget_store_errors_total": s.store_errors,
            "gateway_budget_degraded_reservations_total": s.degraded_reservations,
            "gateway_budget_settle_failures_total": s.settle_failures,
            "gateway_budget_pending_settles": len(self._ledger.pending),
            "gateway_budget_refusals_budget_total": s.refused_budget,
            "gateway_budget_refusals_rate_total": s.refused_rate,
            "gateway_budget_refusals_store_total": s.refused_store,
            "gateway_budget_top_up_refusals_total": s.top_up_refusals,
            "gateway_budget_live_holds": len(self._ledger.live),
            "gateway_budget_alerts_delivered_total": self.alerts.delivered,
            "gateway_budget_alerts_failed_total": self.alerts.failed,
        }

    def _store_error(self) -> None:
        self.stats.store_errors += 1

    def _store_back(self) -> None:
        self._ledger.settles.spawn(self._local.reconcile(self._link))

    # the request path

    async def reserve(self, principal: Principal, estimate: Estimate) -> Hold:
        """Reserve ``estimate`` on every scope of the principal, all or nothing (``ledger``)."""
        return await self._ledger.reserve(principal, estimate)

    # background: renew live holds, probe a store that is away, retry settles, reconcile

    async def _maintain(self) -> None:
        tick = min(1.0, self._ttl_us / MICROS / 4)
        renew_every = self._ttl_us / MICROS / 3
        last_renew = time.monotonic()
        link, ledger = self._link, self._ledger
        while True:
            await asyncio.sleep(tick)
            try:
                if time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    await ledger.renew_live()
                if link.probe_due():
                    await link.call(link.store.ping())
                    link.answered()
                await ledger.retry_settles()
                if link.outage is None and self._local.unsynced:
                    await self._local.reconcile(link)
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("budget maintenance failed")

    # admin

    async def status(self, team_name: str) -> dict[str, Any]:
        """The body of GET /admin/teams/{team}/budget, plus tokens, limits and per-key budgets."""
        return await self._configs.status(team_name, self.degraded)

    async def update(self, team_name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """PATCH a team's (or one key's) budget and limits at run time, on every replica.

        Body: any of ``usd``, ``tokens``, ``period``, ``alert_at``, ``alert_webhook``, ``rpm``,
        ``tpm`` (null removes a limit), optional ``key`` (a key id such as ``cfg:alice``) to
        change that key's scope instead of the team's, or ``{"reset": true}`` to return to the
        configuration file. The change is stored in the budget store with a new version; every
        replica's next reserve sees the version change and reloads.
        """
        await self._configs.update(team_name, patch)
        return await self.status(team_name)

