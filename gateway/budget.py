"""Budgets: reserve an estimate before the upstream call, settle the actual cost after it.

The request path sees only ``Budgets.reserve(principal, estimate) -> Hold`` and the hold's
``settle`` / ``release`` / ``top_up``; where the numbers live is the store's business. Every hold
is settled or released exactly once (both are idempotent), in a ``finally`` of the request path.

This first version keeps a team's USD budget per UTC calendar period in process memory.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.auth import Principal
from gateway.errors import BudgetExceeded
from gateway.settings import Period, Settings, TeamSettings

MICROS = 1_000_000


def usd_to_micros(usd: float) -> int:
    return round(usd * MICROS)


def micros_to_usd(micros: int) -> float:
    return micros / MICROS


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a request may cost at most, before it is sent."""

    prompt_tokens: int
    max_output_tokens: int
    cost_micros: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_output_tokens


def period_bounds(period: Period, now: float) -> tuple[datetime, datetime | None]:
    """The UTC calendar period containing ``now``: [start, end); ``total`` never ends."""
    t = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "week":
        start = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0,
                                                          microsecond=0)
        return start, start + timedelta(days=7)
    if period == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    return datetime(1970, 1, 1, tzinfo=UTC), None


def period_id(period: Period, now: float) -> str:
    start, _ = period_bounds(period, now)
    return {"day": start.strftime("%Y-%m-%d"), "week": start.strftime("%G-W%V"),
            "month": start.strftime("%Y-%m"), "total": "total"}[period]


@dataclass(slots=True)
class _Bucket:
    spent: int = 0
    reserved: int = 0


class Hold:
    """One request's reservation. Settle or release exactly once; later calls are ignored."""

    def __init__(self, budgets: Budgets, bucket: _Bucket | None, amount: int,
                 limit: int | None) -> None:
        self._budgets = budgets
        self._bucket = bucket
        self.amount = amount
        self._limit = limit
        self.done = False
        self.remaining_micros: int | None = None
        self.degraded = False

    async def settle(self, cost_micros: int, tokens: int = 0) -> None:
        if self.done:
            return
        self.done = True
        if self._bucket is not None:
            self._bucket.reserved -= self.amount
            self._bucket.spent += cost_micros
            if self._limit is not None:
                self.remaining_micros = max(0, self._limit - self._bucket.spent
                                            - self._bucket.reserved)

    async def release(self) -> None:
        await self.settle(0)

    async def top_up(self, cost_micros: int, tokens: int = 0) -> bool:
        """Grow the hold mid-stream; False when the budget has no room left."""
        if self.done or self._bucket is None or self._limit is None:
            return not self.done
        free = self._limit - self._bucket.spent - self._bucket.reserved
        if cost_micros > free:
            return False
        self._bucket.reserved += cost_micros
        self.amount += cost_micros
        return True

    def headers(self) -> dict[str, str]:
        if self.remaining_micros is None:
            return {}
        return {"x-gateway-budget-remaining-usd": f"{micros_to_usd(self.remaining_micros):.6f}"}


class Budgets:
    """Every team's budget, built once in ``create_app``."""

    def __init__(self, settings: Settings, *, clock: Any = time.time) -> None:
        self._teams = {t.name: t for t in settings.teams}
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    def _bucket(self, team: TeamSettings) -> tuple[_Bucket | None, int | None]:
        if team.budget is None or team.budget.usd is None:
            return None, None
        key = f"budget:{team.name}:usd:{period_id(team.budget.period, self._clock())}"
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket()
        return b, usd_to_micros(team.budget.usd)

    async def reserve(self, principal: Principal, estimate: Estimate) -> Hold:
        """Reserve ``estimate`` on every scope of the principal, all or nothing."""
        team = principal.team
        if team is None:
            return Hold(self, None, 0, None)
        bucket, limit = self._bucket(team)
        if bucket is None or limit is None:
            return Hold(self, None, 0, None)
        if bucket.spent + bucket.reserved + estimate.cost_micros > limit:
            raise BudgetExceeded(
                f"Team '{team.name}' has exhausted its {team.budget.period if team.budget else ''}"
                " budget."
            )
        bucket.reserved += estimate.cost_micros
        return Hold(self, bucket, estimate.cost_micros, limit)

    async def status(self, team_name: str) -> dict[str, Any]:
        """The body of GET /admin/teams/{team}/budget."""
        team = self._teams[team_name]
        now = self._clock()
        period: Period = team.budget.period if team.budget else "total"
        start, end = period_bounds(period, now)
        bucket, limit = self._bucket(team)
        spent = bucket.spent if bucket else 0
        reserved = bucket.reserved if bucket else 0
        return {
            "team": team.name,
            "period": period,
            "period_start": start.isoformat(),
            "period_end": end.isoformat() if end else None,
            "limit_usd": None if limit is None else micros_to_usd(limit),
            "spent_usd": micros_to_usd(spent),
            "reserved_usd": micros_to_usd(reserved),
            "remaining_usd": None if limit is None else micros_to_usd(
                max(0, limit - spent - reserved)),
        }
