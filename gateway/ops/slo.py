"""SLO and drift alerts per model, from the records this replica serves.

``observe(record)`` runs on the request path, so it only adds the record to a time bucket of its
model (width ``window_s / 10``); a background task evaluates the rules every
``check_interval_s``:

* ``error_rate``: the share of requests in the window that failed on the gateway's or the
  upstream's side (status >= 500, kill switches excluded) is above ``threshold``;
* ``latency_p95``: the 95th percentile in the window is above ``threshold`` ms, taken over the
  whole request for plain answers and over the time to first token for streams (a long stream is
  not a slow one);
* ``drift``: the window's flag rate, refusal rate or mean output tokens is ``factor`` times
  above or below the same value over the trailing baseline (``baseline_s`` before the window).
  Rates are floored at 1% before the ratio, so a rate that moves from 0 to 0.5% is not a
  hundredfold change.

Each replica judges its own traffic (no shared state, no coordination); a rule fires at most once
per ``cooldown_s`` for the same model and signal. Alerts go out through the budget alerts'
``AlertSender`` (same queue, retries and records).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.ops.alerts import Alert, AlertSender
from gateway.records import RequestRecord
from gateway.settings import AlertRule, AlertsSettings
from gateway.tasks import Background

log = logging.getLogger("gateway.slo")

RATE_FLOOR = 0.01
MAX_LATENCY_SAMPLES = 2000  # per bucket; beyond it the percentile is taken over the first ones
_NOT_ERRORS = frozenset({"model_disabled", "team_disabled"})


@dataclass(frozen=True, slots=True)
class OpsAlert(Alert):
    """An SLO or drift alert, delivered by ``AlertSender`` like a budget alert.

    It extends the budget ``Alert`` (whose budget fields are unused) only so the sender's queue,
    retries and records are reused as they are; ``payload()`` is what the webhook receives.
    """

    body: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return self.body


@dataclass(slots=True)
class Bucket:
    start: float
    requests: int = 0
    errors: int = 0
    flagged: int = 0
    refusals: int = 0
    answered: int = 0  # 200s, the denominator of output tokens
    output_tokens: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, rec: RequestRecord) -> None:
        self.requests += 1
        if rec.status >= 500 and rec.error_code not in _NOT_ERRORS:
            self.errors += 1
        self.flagged += rec.flagged
        if is_refusal(rec):
            self.refusals += 1
        if rec.status == 200:
            self.answered += 1
            self.output_tokens += rec.completion_tokens
            latency = rec.ttft_ms if rec.stream else rec.latency_ms
            if latency is not None and len(self.latencies) < MAX_LATENCY_SAMPLES:
                self.latencies.append(latency)


def is_refusal(rec: RequestRecord) -> bool:
    """The model declined: a refusal check fired, or the answer was filtered."""
    return rec.finish_reason == "content_filter" or any(
        r.check == "refusal" for r in rec.rules)


@dataclass(slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    flagged: int = 0
    refusals: int = 0
    answered: int = 0
    output_tokens: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, b: Bucket) -> None:
        self.requests += b.requests
        self.errors += b.errors
        self.flagged += b.flagged
        self.refusals += b.refusals
        self.answered += b.answered
        self.output_tokens += b.output_tokens
        self.latencies += b.latencies

    def signal(self, name: str) -> float | None:
        if name == "output_tokens":
            return self.output_tokens / self.answered if self.answered else None
        if not self.requests:
            return None
        return (self.flagged if name == "flag_rate" else self.refusals) / self.requests

    def p95(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class SloMonitor:
    def __init__(self, settings: AlertsSettings, sender: AlertSender, *,
                 clock: Callable[[], float] = time.time,
                 on_alert: Callable[[str, str], None] | None = None) -> None:
        self._cfg = settings
        self._sender = sender
        self._clock = clock
        self._on_alert = on_alert
        self._width = settings.window_s / 10
        self._keep = settings.window_s + settings.baseline_s
        self._models: dict[str, deque[Bucket]] = {}
        self._last_fired: dict[tuple[str, str, str], float] = {}
        self._task = Background("slo-monitor", self._loop)

    @property
    def enabled(self) -> bool:
        return bool(self._cfg.rules)

    def observe(self, rec: RequestRecord) -> None:
        if not self._cfg.rules or rec.model is None or rec.status in (401, 404):
            return
        now = self._clock()
        buckets = self._models.get(rec.model)
        if buckets is None:
            buckets = self._models[rec.model] = deque()
        if not buckets or now - buckets[-1].start >= self._width:
            buckets.append(Bucket(now - now % self._width))
            while buckets and buckets[0].start < now - self._keep - self._width:
                buckets.popleft()
        buckets[-1].add(rec)

    async def start(self) -> None:
        if self.enabled:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.check_interval_s)
            try:
                self.evaluate()
            except Exception:  # a bug here must not stop later evaluations
                log.exception("evaluating SLO rules failed")

    def evaluate(self) -> list[dict[str, Any]]:
        """Check every rule against every model now; returns the alert bodies sent."""
        now = self._clock()
        sent: list[dict[str, Any]] = []
        for model, buckets in self._models.items():
            current, baseline = self._split(buckets, now)
            for rule in self._cfg.rules:
                if rule.models is not None and model not in rule.models:
                    continue
                for body in self._judge(rule, model, current, baseline):
                    if self._fire(rule, model, body, now):
                        sent.append(body)
        return sent

    def _split(self, buckets: deque[Bucket], now: float) -> tuple[Totals, Totals]:
        current, baseline = Totals(), Totals()
        edge = now - self._cfg.window_s
        for b in buckets:
            if b.start + self._width > edge:
                current.add(b)
            elif b.start >= edge - self._cfg.baseline_s:
                baseline.add(b)
                b.latencies = []  # only the window's latencies are ever read again
        return current, baseline

    def _judge(self, rule: AlertRule, model: str, cur: Totals, base: Totals
               ) -> list[dict[str, Any]]:
        if cur.requests < self._cfg.min_requests:
            return []
        common = {"rule": rule.name or rule.kind, "kind": rule.kind, "model": model,
                  "window_s": self._cfg.window_s, "requests": cur.requests}
        assert rule.threshold is not None or rule.kind == "drift"
        if rule.kind == "error_rate":
            rate = cur.errors / cur.requests
            return ([{**common, "signal": "error_rate", "value": rate,
                      "threshold": rule.threshold}]
                    if rule.threshold is not None and rate > rule.threshold else [])
        if rule.kind == "latency_p95":
            p95 = cur.p95()
            return ([{**common, "signal": "latency_p95_ms", "value": p95,
                      "threshold": rule.threshold}]
                    if p95 is not None and rule.threshold is not None and p95 > rule.threshold
                    else [])
        return self._drift(rule, common, cur, base)

    def _drift(self, rule: AlertRule, common: dict[str, Any], cur: Totals, base: Totals
               ) -> list[dict[str, Any]]:
        assert rule.factor is not None
        if base.requests < 5 * self._cfg.min_requests:
            return []
        out = []
        for name in rule.signals:
            now_v, base_v = cur.signal(name), base.signal(name)
            if now_v is None or base_v is None:
                continue
            floor = 1.0 if name == "output_tokens" else RATE_FLOOR
            ratio = max(now_v, floor) / max(base_v, floor)
            if ratio > rule.factor or ratio < 1 / rule.factor:
                out.append({**common, "signal": name, "value": now_v, "baseline": base_v,
                            "ratio": round(ratio, 4), "factor": rule.factor,
                            "baseline_requests": base.requests})
        return out

    def _fire(self, rule: AlertRule, model: str, body: dict[str, Any], now: float) -> bool:
        key = (body["rule"], model, body["signal"])
        last = self._last_fired.get(key)
        if last is not None and now - last < self._cfg.cooldown_s:
            return False
        self._last_fired[key] = now
        body["at"] = now
        webhook = rule.webhook or self._cfg.webhook
        self._sender.send(OpsAlert(team="-", key=None, metric="usd", period="-",
                                   period_id="-", spent=0.0, limit=0.0, threshold=0.0,
                                   webhook=webhook, body=body))
        if self._on_alert is not None:
            self._on_alert(model, f"{rule.kind}:{body['signal']}")
        return True
