"""Everything a request needs, built once per app in ``create_app`` and passed down explicitly.

There is no module-level state: two apps in one process (as in the tests) share nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from gateway.auth import Authenticator
from gateway.budget.budgets import Budgets
from gateway.guardrails.runner import Guardrails
from gateway.ops.audit import Audit
from gateway.ops.metrics import Metrics
from gateway.ops.operations import Ops, build_ops
from gateway.ops.retention import Retention
from gateway.pricing import Pricing
from gateway.providers import Providers
from gateway.providers.base import Provider
from gateway.records import RecordWriter, RequestIds, RequestRecord
from gateway.settings import ModelSettings, Settings
from gateway.stores.backends import open_log_store
from gateway.stores.logs import LogStore
from gateway.tokens import warm_up

log = logging.getLogger("gateway")


@dataclass
class Services:
    settings: Settings
    log_store: LogStore
    auth: Authenticator
    budgets: Budgets
    pricing: Pricing
    metrics: Metrics
    writer: RecordWriter
    #: The seam of the provider call: ``complete`` / ``stream`` an ``UpstreamCall``. The
    #: providers of the configured models today; a router of deployments can stand in for it.
    upstream: Provider
    guardrails: Guardrails
    models: dict[str, ModelSettings] = field(default_factory=dict)
    request_ids: RequestIds = field(default_factory=RequestIds)
    #: Audit trail, kill switches, SLO monitor (``gateway.ops``).
    ops: Ops = field(kw_only=True)
    retention: Retention = field(kw_only=True)

    def submit(self, record: RequestRecord) -> None:
        """Hand a finished record to the metrics and the background writer (never blocks)."""
        self.metrics.observe(record)
        self.ops.observe(record)
        self.writer.submit(record)

    @property
    def audit(self) -> Audit:
        """``await s.audit.record(actor, action, target, details)`` for admin actions."""
        return self.ops.audit

    async def start(self) -> None:
        """The stores first, then what uses them; ``stop`` undoes it the other way round."""
        await self.log_store.open()
        await self.budgets.open()
        await self.ops.start()
        self.writer.start()
        self.retention.start()
        await asyncio.to_thread(warm_up, [m.upstream_model for m in self.settings.models])
        await self.guardrails.start()

    async def stop(self) -> None:
        """The shutdown order, as one list: what serves requests and writes records stops
        before what it uses."""
        for stop in (
            self.ops.drain,  # streams cut at the end of the grace period settle first
            self.retention.stop,
            self.writer.close,  # every record, theirs included, is written (or counted lost)
            self.ops.stop,
            self.guardrails.close,
            self.upstream.close,
            self.budgets.close,  # the last settles, and degraded spend added back
            self.log_store.close,
        ):
            await stop()


def build_services(settings: Settings) -> Services:
    store = open_log_store(settings.stores.logs)
    metrics = Metrics(models=[m.name for m in settings.models],
                      teams=[t.name for t in settings.teams])
    writer = RecordWriter(metrics.counting_errors("logs", store.write_records),
                          max_queue=settings.stores.log_queue_size,
                          batch_size=settings.stores.log_batch_size,
                          on_drop=metrics.records_dropped.inc)
    metrics.bind_queue_depth(lambda: writer.depth)
    budgets = Budgets(settings)
    metrics.bind_budgets(budgets, [t.name for t in settings.teams])
    return Services(
        settings=settings, log_store=store, auth=Authenticator(settings, store),
        budgets=budgets, pricing=Pricing(settings), metrics=metrics, writer=writer,
        upstream=Providers(settings.models), guardrails=Guardrails(settings),
        models={m.name: m for m in settings.models},
        ops=build_ops(settings, metrics, budgets.alerts),
        retention=Retention(store, settings.retention),
    )
