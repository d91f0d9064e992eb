"""Budget alerts: one webhook per threshold per period, sent off the request path with retries.

``gateway.budget`` decides *that* an alert is due (and claims it in the shared store, so only one
replica sends it); this module only delivers. ``send`` never blocks and never raises: alerts wait
in a bounded queue (beyond it they are dropped, counted and logged), each is POSTed as JSON and
retried with exponential backoff on a network error or a non-2xx answer, and every outcome is
kept in ``records`` (newest last, bounded) for the admin API and tests, and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson

from gateway.tasks import Background

log = logging.getLogger("gateway.alerts")

Status = Literal["pending", "delivered", "failed", "dropped", "no_webhook"]


@dataclass(frozen=True, slots=True)
class Alert:
    """A budget crossed ``threshold`` of its limit in one period."""

    team: str
    key: str | None  # the key id for a per-key budget, None for the team's
    metric: Literal["usd", "tokens"]
    period: str  # day | week | month | total
    period_id: str  # 2026-11, 2026-W47, 2026-11-22, total
    spent: float  # USD or tokens, like ``limit``
    limit: float
    threshold: float
    webhook: str | None

    def payload(self) -> dict[str, Any]:
        return {"team": self.team, "key": self.key, "metric": self.metric,
                "period": self.period, "period_id": self.period_id, "spent": self.spent,
                "limit": self.limit, "threshold": self.threshold}


@dataclass(slots=True)
class AlertRecord:
    alert: Alert
    status: Status = "pending"
    attempts: int = 0
    last_error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {**self.alert.payload(), "webhook": self.alert.webhook, "status": self.status,
                "attempts": self.attempts, "last_error": self.last_error,
                "created_at": self.created_at, "finished_at": self.finished_at}


class AlertSender:
    """Delivers alerts with bounded memory: a queue, a few deliveries at once, kept records."""

    def __init__(self, *, max_queue: int = 1000, max_attempts: int = 6, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, timeout_s: float = 5.0, keep: int = 1000,
                 concurrency: int = 4) -> None:
        self._queue: asyncio.Queue[AlertRecord] = asyncio.Queue(maxsize=max_queue)
        self._max_attempts = max_attempts
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.records: deque[AlertRecord] = deque(maxlen=keep)
        self.delivered = 0
        self.failed = 0
        self._workers = [Background(f"alerts-{i}", self._work) for i in range(concurrency)]
        self._session: aiohttp.ClientSession | None = None

    def send(self, alert: Alert) -> None:
        rec = AlertRecord(alert)
        self.records.append(rec)
        log.warning("budget alert: %s", orjson.dumps(alert.payload()).decode())
        if alert.webhook is None:
            rec.status = "no_webhook"
            return
        try:
            self._queue.put_nowait(rec)
        except asyncio.QueueFull:
            rec.status = "dropped"
            log.error("alert queue full; dropped alert for team %s", alert.team)

    async def start(self) -> None:
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        for w in self._workers:
            w.start()

    async def close(self, grace_s: float = 2.0) -> None:
        """Give queued alerts ``grace_s`` to go out, then stop."""
        if self._session is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), grace_s)
        for w in self._workers:
            await w.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        while True:
            rec = await self._queue.get()
            try:
                await self._deliver(rec)
            finally:
                self._queue.task_done()

    async def _deliver(self, rec: AlertRecord) -> None:
        assert self._session is not None and rec.alert.webhook is not None
        body = orjson.dumps(rec.alert.payload())
        delay = self._backoff
        while True:
            rec.attempts += 1
            try:
                async with self._session.post(
                        rec.alert.webhook, data=body,
                        headers={"content-type": "application/json"}) as resp:
                    if 200 <= resp.status < 300:
                        rec.status, rec.finished_at = "delivered", time.time()
                        self.delivered += 1
                        log.info("alert delivered to %s after %d attempt(s)",
                                 rec.alert.webhook, rec.attempts)
                        return
                    rec.last_error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                rec.last_error = repr(exc)
            if rec.attempts >= self._max_attempts:
                rec.status, rec.finished_at = "failed", time.time()
                self.failed += 1
                log.error("alert to %s failed after %d attempts: %s", rec.alert.webhook,
                          rec.attempts, rec.last_error)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)
