"""The budget service's counters, exported on /metrics (``Budgets.metrics``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BudgetStats:
    store_errors: int = 0
    degraded_reservations: int = 0
    settle_failures: int = 0
    refused_budget: int = 0
    refused_rate: int = 0
    refused_store: int = 0
    top_up_refusals: int = 0
