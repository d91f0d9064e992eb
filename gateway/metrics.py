"""Prometheus metrics, one registry per app (no module-level state), rendered at /metrics.

Label children are cached per (team, model, ...) tuple because ``.labels()`` takes a lock and
builds a key on every call; on the hot path one dict lookup replaces that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.records import RequestRecord

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                    30, 60, 120)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
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
        self.ttft = Histogram("gateway_time_to_first_token_seconds",
                              "Time to the first streamed chunk", ["team", "model"],
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("gateway_tokens", "Tokens by team, model and kind",
                              ["team", "model", "kind"], registry=r)
        self.cost = Counter("gateway_cost_usd", "Cost in USD by team and model",
                            ["team", "model"], registry=r)
        self.records_dropped = Counter("gateway_log_records_dropped",
                                       "Request records dropped (queue full or store down)",
                                       registry=r)
        self.log_queue_depth = Gauge("gateway_log_queue_depth",
                                     "Request records waiting to be written", registry=r)
        self._children: dict[tuple[str, ...], Any] = {}

    def bind_queue_depth(self, depth: Callable[[], int]) -> None:
        self.log_queue_depth.set_function(lambda: float(depth()))

    def _child(self, metric: Any, key: tuple[str, ...]) -> Any:
        ck = (metric._name, *key)
        child = self._children.get(ck)
        if child is None:
            child = self._children[ck] = metric.labels(*key)
        return child

    def observe(self, rec: RequestRecord) -> None:
        team = rec.team or "-"
        model = rec.model or "-"
        self._child(self.requests, (team, model, rec.endpoint, str(rec.status))).inc()
        self._child(self.latency, (team, model, rec.endpoint)).observe(rec.latency_ms / 1000.0)
        if rec.upstream_ms is not None:
            self._child(self.upstream_latency, (model,)).observe(rec.upstream_ms / 1000.0)
        if rec.ttft_ms is not None:
            self._child(self.ttft, (team, model)).observe(rec.ttft_ms / 1000.0)
        if rec.prompt_tokens:
            self._child(self.tokens, (team, model, "prompt")).inc(rec.prompt_tokens)
        if rec.completion_tokens:
            self._child(self.tokens, (team, model, "completion")).inc(rec.completion_tokens)
        if rec.cost_micros:
            self._child(self.cost, (team, model)).inc(rec.cost_micros / 1e6)

    def render(self) -> bytes:
        return generate_latest(self.registry)
