"""The operations side of one app: audit trail, kill switches, SLO monitor and metrics refresh.

Built in ``build_services`` next to the request path's services and started and stopped with
them; ``Services.ops`` holds it. Nothing here is module state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.ops.alerts import AlertSender
from gateway.ops.audit import Audit
from gateway.ops.killswitch import KillSwitches
from gateway.ops.metrics import Metrics
from gateway.ops.slo import SloMonitor
from gateway.ops.tracing import Tracer
from gateway.records import RequestRecord
from gateway.settings import Settings
from gateway.stores.backends import open_ops_store
from gateway.stores.ops import OpsStore
from gateway.tasks import Background

log = logging.getLogger("gateway.ops")

METRICS_REFRESH_S = 5.0
#: After uvicorn's grace period it cancels what still runs; their shielded settlement gets this
#: long to finish (and submit its record) before the log writer is closed.
DRAIN_S = 10.0


@dataclass
class Ops:
    store: OpsStore
    audit: Audit
    switches: KillSwitches
    monitor: SloMonitor
    metrics: Metrics
    tracer: Tracer
    #: HTTP requests in progress (``InFlight``); shutdown waits for it to reach zero.
    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _refresher: Background = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._refresher = Background("metrics-refresh", self._refresh)

    def observe(self, record: RequestRecord) -> None:
        """Every finished request: the SLO/drift windows and, if enabled, a trace span."""
        self.monitor.observe(record)
        self.tracer.record(record)

    async def drain(self, timeout_s: float = DRAIN_S) -> None:
        """Wait until no request is in progress, so every record reaches the writer."""
        if self.inflight == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), timeout_s)
        if self.inflight:
            log.error("%d request(s) still running after %.0fs; their records may be lost",
                      self.inflight, timeout_s)

    def enter(self) -> None:
        """An HTTP request started (``InFlight`` and the API fast path count them)."""
        self.inflight += 1
        if self.inflight == 1:
            self.idle.clear()

    def leave(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    async def start(self) -> None:
        await self.store.open()
        await self.switches.start()
        await self.monitor.start()
        self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()
        await self.monitor.stop()
        await self.switches.stop()
        await self.store.close()

    async def _refresh(self) -> None:
        """Keep copied gauges current in every worker, scraped or not (multiprocess mode)."""
        while True:
            try:
                await self.metrics.refresh(force=True)
            except Exception as exc:
                log.warning("metrics refresh failed: %s", type(exc).__name__)
            await asyncio.sleep(METRICS_REFRESH_S)


class InFlight:
    """Pure ASGI middleware counting HTTP requests in progress.

    A request counts until the app returns, which for a stream is after its (shielded)
    settlement: when uvicorn cancels streams that outlived the grace period, the lifespan
    shutdown can still wait for their holds and records instead of closing the writer under them.
    """

    def __init__(self, app: ASGIApp, ops: Ops) -> None:
        self.app = app
        self.ops = ops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.ops.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.ops.leave()


def build_ops(settings: Settings, metrics: Metrics, sender: AlertSender) -> Ops:
    store = open_ops_store(settings.stores.logs)
    switches = KillSwitches(store)
    metrics.bind_switches(lambda: _count(switches))
    monitor = SloMonitor(settings.alerts, sender,
                         on_alert=metrics.alert_raised)
    return Ops(store=store, audit=Audit(store), switches=switches, monitor=monitor,
               metrics=metrics, tracer=Tracer(settings.tracing))


def _count(switches: KillSwitches) -> dict[str, int]:
    out = {"model": 0, "team": 0}
    for sw in switches.active():
        out[sw.kind] = out.get(sw.kind, 0) + 1
    return out
