"""Prometheus metrics, one registry per app (no module-level state), rendered at /metrics.

Label children are cached per (team, model, ...) tuple because ``.labels()`` takes a lock and
builds a key on every call; on the hot path one dict lookup replaces that.

No label value comes from the client: a model or team name becomes a label only if it is
configured, anything else is ``unknown`` (and a missing one ``-``), so hostile requests (a new
2,000-character model name each) cannot add series, nor entries to the children cache.

Values that live elsewhere (the log queue depth, the budget engine's counters, each team's
remaining budget) are copied into ordinary metrics by ``refresh()``, every few seconds and before
each scrape, instead of being read by callback collectors: with several workers
(``PROMETHEUS_MULTIPROC_DIR`` set, see ``gateway serve --workers``) a scrape reaches one worker
only, and only values written through prometheus-client's multiprocess files are summed over all
of them. ``render()`` then reads those files with ``MultiProcessCollector``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.records import RequestRecord

log = logging.getLogger("gateway.metrics")


class Budgets(Protocol):
    """What the metrics copy from the budget service (``gateway.budget.budgets.Budgets``)."""

    def metrics(self) -> dict[str, float]: ...

    async def status(self, team_name: str) -> dict[str, Any]: ...

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                    30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: A scrape refreshes the copied values at most this often (budget status costs a store call).
MIN_REFRESH_S = 1.0
#: The label value of a model or team name that is not configured, and of a missing one.
UNKNOWN = "unknown"
ABSENT = "-"


#: Help texts of the budget engine's figures (``Budgets.metrics()``), copied by ``refresh``.
_BUDGET_HELP = {
    "gateway_budget_degraded": "1 while the budget store is unreachable (fail closed, or the "
                               "local limiter)",
    "gateway_budget_store_errors_total": "Budget-store calls that failed or timed out",
    "gateway_budget_degraded_reservations_total": "Reservations made by the local limiter "
                                                  "while the budget store was away",
    "gateway_budget_settle_failures_total": "Settlements that failed and were queued to retry",
    "gateway_budget_pending_settles": "Settlements waiting to be retried",
    "gateway_budget_refusals_budget_total": "Requests refused: budget exhausted",
    "gateway_budget_refusals_rate_total": "Requests refused: rate limit (RPM/TPM) hit",
    "gateway_budget_refusals_store_total": "Requests refused: budget store unreachable",
    "gateway_budget_top_up_refusals_total": "Hold top-ups refused (a stream outgrowing its "
                                            "reservation with no budget left)",
    "gateway_budget_live_holds": "Budget holds of requests in progress",
    "gateway_budget_alerts_delivered_total": "Budget threshold alerts delivered",
    "gateway_budget_alerts_failed_total": "Budget threshold alerts that could not be delivered",
}


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    def __init__(self, models: Iterable[str] = (), teams: Iterable[str] = ()) -> None:
        """``models`` and ``teams``: the configured names, the only ones used as labels."""
        self._model_names = frozenset(models)
        self._team_names = frozenset(teams)
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("gateway_requests", "Requests by team, model, endpoint and status",
                                ["team", "model", "endpoint", "status"], registry=r)
        self.latency = Histogram("gateway_request_duration_seconds",
                                 "Whole-request latency as seen by the gateway",
                                 ["team", "model", "endpoint"], buckets=_LATENCY_BUCKETS,
                                 registry=r)
        self.upstream_latency = Histogram("gateway_upstream_duration_seconds",
                                          "Time spent waiting for the upstream",
                                          ["model"], buckets=_LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("gateway_overhead_duration_seconds",
                                  "The gateway's own time: whole request minus upstream time",
                                  ["model", "endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("gateway_time_to_first_token_seconds",
                              "Time to the first streamed chunk", ["team", "model"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("gateway_tokens", "Tokens by team, model and kind",
                              ["team", "model", "kind"], registry=r)
        self.cost = Counter("gateway_cost_usd", "Cost in USD by team and model",
                            ["team", "model"], registry=r)
        self.rule_hits = Counter("gateway_rule_hits", "Policy rules that fired, by rule and action",
                                 ["rule", "action"], registry=r)
        self.store_errors = Counter("gateway_store_errors",
                                    "Failed calls to a store (logs, ops), by store", ["store"],
                                    registry=r)
        self.records_dropped = Counter("gateway_log_records_dropped",
                                       "Request records dropped (queue full or store down)",
                                       registry=r)
        self.log_queue_depth = Gauge("gateway_log_queue_depth",
                                     "Request records waiting to be written", registry=r,
                                     multiprocess_mode="livesum")
        self.budget_remaining = Gauge("gateway_budget_remaining_usd",
                                      "Budget left in the current period, per team",
                                      ["team"], registry=r, multiprocess_mode="mostrecent")
        self.kill_switches = Gauge("gateway_kill_switches_active",
                                   "Models and teams disabled by a kill switch", ["kind"],
                                   registry=r, multiprocess_mode="max")
        self.ops_alerts = Counter("gateway_ops_alerts", "SLO and drift alerts raised",
                                  ["model", "kind"], registry=r)
        self._children: dict[tuple[str, ...], Any] = {}
        self._depth: Callable[[], int] = lambda: 0
        self._budgets: Budgets | None = None
        self._teams: list[str] = []
        self._budget_metrics: dict[str, Any] = {}
        self._budget_seen: dict[str, float] = {}
        self._switch_count: Callable[[], dict[str, int]] = dict
        self._refreshed = 0.0

    # --- wiring ------------------------------------------------------------------------------

    def bind_queue_depth(self, depth: Callable[[], int]) -> None:
        self._depth = depth

    def bind_budgets(self, budgets: Budgets, teams: list[str]) -> None:
        """Mirror ``Budgets.metrics()`` (degraded mode, store errors, refusals, ...) and the
        remaining budget of ``teams``."""
        self._budgets = budgets
        self._teams = teams
        for name in budgets.metrics():
            doc = _BUDGET_HELP.get(name, "A budget engine figure (README: Operations, Metrics)")
            if name.endswith("_total"):
                self._budget_metrics[name] = Counter(name.removesuffix("_total"), doc,
                                                     registry=self.registry)
            else:
                self._budget_metrics[name] = Gauge(name, doc, registry=self.registry,
                                                   multiprocess_mode="max")

    def bind_switches(self, count: Callable[[], dict[str, int]]) -> None:
        self._switch_count = count

    def alert_raised(self, model: str, kind: str) -> None:
        """An SLO or drift alert (``kind`` comes from the configured rules)."""
        self.ops_alerts.labels(self.model_label(model), kind).inc()

    def counting_errors(self, store: str, fn: Callable[[Any], Awaitable[None]]
                        ) -> Callable[[Any], Awaitable[None]]:
        """Wrap a store call so each failure is counted (and still raised)."""
        child = self.store_errors.labels(store)

        async def call(arg: Any) -> None:
            try:
                await fn(arg)
            except Exception:
                child.inc()
                raise

        return call

    # --- the request path --------------------------------------------------------------------

    def _child(self, metric: Any, key: tuple[str, ...]) -> Any:
        ck = (metric._name, *key)
        child = self._children.get(ck)
        if child is None:
            child = self._children[ck] = metric.labels(*key)
        return child

    def model_label(self, name: str | None) -> str:
        """A model name as a label value: configured, else ``unknown`` (``-`` when none)."""
        if name is None:
            return ABSENT
        return name if name in self._model_names else UNKNOWN

    def observe(self, rec: RequestRecord) -> None:
        team = rec.team
        if team not in self._team_names:
            team = UNKNOWN if team else ABSENT
        model = rec.model
        if model not in self._model_names:
            model = UNKNOWN if model else ABSENT
        status = rec.status
        self._child(self.requests, (team, model, rec.endpoint,
                                    str(status) if 100 <= status <= 599 else UNKNOWN)).inc()
        self._child(self.latency, (team, model, rec.endpoint)).observe(rec.latency_ms / 1000.0)
        if rec.upstream_ms is not None:
            self._child(self.upstream_latency, (model,)).observe(rec.upstream_ms / 1000.0)
            overhead = max(0.0, rec.latency_ms - rec.upstream_ms) / 1000.0
            self._child(self.overhead, (model, rec.endpoint)).observe(overhead)
        if rec.ttft_ms is not None:
            self._child(self.ttft, (team, model)).observe(rec.ttft_ms / 1000.0)
        if rec.prompt_tokens:
            self._child(self.tokens, (team, model, "prompt")).inc(rec.prompt_tokens)
        if rec.completion_tokens:
            self._child(self.tokens, (team, model, "completion")).inc(rec.completion_tokens)
        if rec.cost_micros:
            self._child(self.cost, (team, model)).inc(rec.cost_micros / 1e6)
        for hit in rec.rules:
            key = (hit.rule or hit.check or "-", hit.action or "-")
            self._child(self.rule_hits, key).inc()

    # --- copied values -----------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Copy the values that live elsewhere (budget status: at most once per MIN_REFRESH_S)."""
        self.log_queue_depth.set(self._depth())
        for kind, n in self._switch_count().items():
            self.kill_switches.labels(kind).set(n)
        if self._budgets is None:
            return
        self._mirror_budgets(self._budgets)
        now = time.monotonic()
        if force or now - self._refreshed >= MIN_REFRESH_S:
            self._refreshed = now
            await self._remaining(self._budgets)

    def _mirror_budgets(self, budgets: Budgets) -> None:
        for name, value in budgets.metrics().items():
            metric = self._budget_metrics.get(name)
            if metric is None:
                continue
            if name.endswith("_total"):
                delta = value - self._budget_seen.get(name, 0.0)
                if delta > 0:
                    metric.inc(delta)
                self._budget_seen[name] = value
            else:
                metric.set(value)

    async def _remaining(self, budgets: Budgets) -> None:
        for team in self._teams:
            try:
                status = await budgets.status(team)
            except Exception as exc:  # a scrape must not fail because the store is away
                log.debug("budget status of %s unavailable: %s", team, type(exc).__name__)
                continue
            left = status.get("remaining_usd")
            if left is not None:
                self.budget_remaining.labels(team).set(float(left))

    def render(self) -> bytes:
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
