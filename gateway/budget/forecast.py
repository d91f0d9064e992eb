"""Spend forecasts: each team's burn rate, its projected spend at the end of the budget period and
the moment the budget runs out at that rate.

The burn rate is the period's spend so far divided by the days elapsed in it (for a ``total``
budget, since the first day with spend), read from the request log's daily sums. A plain average
is deliberately simple: it is stable, explainable in one sentence and exact for steady traffic;
a team whose traffic just changed will see the forecast follow within days. ``compute`` is a pure
function of those numbers and the clock, so it is tested on synthetic history with known answers.

A budget that lasts beyond its period at this rate gets no date (``after_period_end``): the
budget renews at the period's end, and a cent spent against $100 would otherwise "run out" in
the year 8951, or past the last date Python can hold. A ``total`` budget has no end, so a date
more than ``HORIZON_DAYS`` away is not given either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gateway.budget.scopes import micros_to_usd, usd_to_micros
from gateway.stores.logs import LogStore, SpendQuery


class BudgetStatus(Protocol):
    """Where a forecast reads a team's limit and period (``Budgets``)."""

    async def status(self, team_name: str) -> dict[str, Any]: ...


DAY_S = 86400.0
MIN_ELAPSED_DAYS = 1 / 24  # an hour into a period, extrapolate from at least an hour
HORIZON_DAYS = 36525.0  # a century: the furthest date a forecast of a total budget gives


@dataclass(frozen=True, slots=True)
class Forecast:
    team: str
    period: str
    period_start: datetime
    period_end: datetime | None
    limit_micros: int | None
    spent_micros: int
    burn_micros_per_day: int
    projected_micros: int | None  # at period end; None for a period that never ends
    runs_out_at: datetime | None  # within the period; None: no limit, already out, or later
    exhausted: bool
    #: At this rate the budget outlasts the period (a total budget: the next century).
    after_period_end: bool = False

    @property
    def runs_out_within_period(self) -> bool:
        return self.runs_out_at is not None and (self.period_end is None
                                                 or self.runs_out_at < self.period_end)

    def public(self) -> dict[str, Any]:
        return {
            "team": self.team, "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "limit_usd": None if self.limit_micros is None else micros_to_usd(self.limit_micros),
            "spent_usd": micros_to_usd(self.spent_micros),
            "burn_rate_usd_per_day": micros_to_usd(self.burn_micros_per_day),
            "projected_usd": None if self.projected_micros is None
            else micros_to_usd(self.projected_micros),
            "runs_out_at": self.runs_out_at.isoformat() if self.runs_out_at else None,
            "runs_out_within_period": self.runs_out_within_period,
            "exhausted": self.exhausted,
            "after_period_end": self.after_period_end,
        }


def compute(team: str, period: str, start: datetime, end: datetime | None,
            limit_micros: int | None, daily: Mapping[str, int], now: datetime) -> Forecast:
    """Forecast from ``daily`` spend (``YYYY-MM-DD`` -> micro-dollars) of the current period."""
    spent = sum(daily.values())
    since = start
    if end is None and daily:  # a total budget: the history starts at the first day with spend
        since = max(start, datetime.fromisoformat(min(daily)).replace(tzinfo=UTC))
    elapsed = max((now - since).total_seconds() / DAY_S, MIN_ELAPSED_DAYS)
    burn = spent / elapsed
    projected = None
    if end is not None:
        projected = round(spent + burn * max(0.0, (end - now).total_seconds() / DAY_S))
    exhausted = limit_micros is not None and spent >= limit_micros
    runs_out = None
    after_end = False
    if limit_micros is not None and not exhausted:
        horizon = HORIZON_DAYS if end is None else (end - now).total_seconds() / DAY_S
        # Compared as a number of days first: a huge one would overflow the date type.
        if burn > 0 and (left := (limit_micros - spent) / burn) < horizon:
            runs_out = now + timedelta(days=left)
        else:
            after_end = True
    return Forecast(team, period, start, end, limit_micros, spent, round(burn), projected,
                    runs_out, exhausted, after_end)


async def team_forecast(budgets: BudgetStatus, logs: LogStore, team: str,
                        now: datetime | None = None) -> Forecast:
    """The forecast of one team: limit and period from its budget, spend from the request log."""
    now = now or datetime.now(UTC)
    status = await budgets.status(team)
    start = datetime.fromisoformat(status["period_start"])
    end = datetime.fromisoformat(status["period_end"]) if status.get("period_end") else None
    rows = await logs.spend(SpendQuery(team=team, group_by="day", since=start.timestamp(),
                                       until=None))
    limit = status.get("limit_usd")
    return compute(team, str(status["period"]), start, end,
                   None if limit is None else usd_to_micros(float(limit)),
                   {r.group: r.cost_micros for r in rows if r.group}, now)


async def forecasts(budgets: BudgetStatus, logs: LogStore, teams: list[str]
                    ) -> list[dict[str, Any]]:
    """GET /admin/spend?forecast=true: the forecasts of these teams."""
    return [(await team_forecast(budgets, logs, name)).public() for name in teams]
