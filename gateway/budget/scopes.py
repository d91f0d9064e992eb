"""Which counters apply to a caller: scopes (team, key), their lines, periods and money units.

Pure functions of the configuration, the run-time overrides (``PATCH``) and the clock; no I/O,
so ``gateway.budget`` stays about holds and the store. A team always has a USD line (unlimited
when it has no USD budget) so its spend shows in the status and every reserve meets the store's
config-version check; keys get lines only for what they configure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from gateway.auth import Principal
from gateway.errors import InvalidRequest
from gateway.pricing import Estimate
from gateway.settings import BudgetSettings, LimitsSettings, Period, TeamSettings
from gateway.stores.budget import UNLIMITED, BudgetLine, Counter, RateLine

MICROS = 1_000_000
KEEP_EXPIRED_PERIOD_S = 7 * 86400  # a finished period's counters stay readable this long


def usd_to_micros(usd: float) -> int:
    return round(usd * MICROS)


def micros_to_usd(micros: int) -> float:
    return micros / MICROS


def period_bounds(period: Period, now: float) -> tuple[datetime, datetime | None]:
    """The UTC calendar period containing ``now``: [start, end); ``total`` never ends."""
    _, start, end = _period_of_day(period, int(now // 86400))
    return start, end


def period_id(period: Period, now: float) -> str:
    return _period_of_day(period, int(now // 86400))[0]


@lru_cache(maxsize=64)
def _period_of_day(period: Period, day: int) -> tuple[str, datetime, datetime | None]:
    """Every period starts and ends on a UTC midnight, so the day number decides it; memoized
    (a pure function) because it is computed for every budget line of every request."""
    start, end = _compute_bounds(period, day * 86400.0)
    pid = {"day": start.strftime("%Y-%m-%d"), "week": start.strftime("%G-W%V"),
           "month": start.strftime("%Y-%m"), "total": "total"}[period]
    return pid, start, end


def _compute_bounds(period: Period, now: float) -> tuple[datetime, datetime | None]:
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


@dataclass(frozen=True, slots=True)
class Scope:
    """The team, or one key inside it, with its effective (config + run-time) settings."""

    name: str  # "team" or "key:<key id>": part of every store key
    key_id: str | None
    budget: BudgetSettings | None
    limits: LimitsSettings | None
    webhook: str | None

    @property
    def label(self) -> str:
        return "Team" if self.key_id is None else f"Key '{self.key_id}' of team"


@dataclass(frozen=True, slots=True)
class LineInfo:
    """Why a budget line exists: for refusal messages, headers and alerts."""

    scope: Scope
    period: Period
    period_id: str


@dataclass(slots=True)
class TeamConfig:
    """A team's run-time overrides as last read from the store, with the store's version."""

    version: int
    overrides: dict[str, dict[str, Any]]


def merge(base: BudgetSettings | LimitsSettings | None, patch: dict[str, Any] | None,
          cls: type[BudgetSettings] | type[LimitsSettings]) -> Any:
    """Config settings with a run-time override on top, validated like the config file."""
    if patch is None:
        return base
    data = {**(base.model_dump() if base else {}), **patch}
    if all(v is None or v == [] for v in data.values()):
        return None
    return cls.model_validate(data)


def scopes_for(team: TeamSettings, principal: Principal, cfg: TeamConfig) -> list[Scope]:
    """The team's scope, then the caller's key scope if the key has a budget or limits."""
    ov = cfg.overrides.get("team", {})
    team_budget = merge(team.budget, ov.get("budget"), BudgetSettings)
    hook = team_budget.alert_webhook if team_budget else None
    out = [Scope("team", None, team_budget,
                 merge(team.limits, ov.get("limits"), LimitsSettings), hook)]
    key = principal.key
    kov = cfg.overrides.get(f"key:{principal.key_id}", {})
    if key is not None or kov:
        budget = merge(key.budget if key else None, kov.get("budget"), BudgetSettings)
        limits = merge(key.limits if key else None, kov.get("limits"), LimitsSettings)
        if budget is not None or limits is not None:
            out.append(Scope(f"key:{principal.key_id}", principal.key_id, budget, limits,
                             (budget.alert_webhook if budget else None) or hook))
    return out


def lines_for(scopes: list[Scope], estimate: Estimate, now: float
              ) -> tuple[list[BudgetLine], list[LineInfo], list[RateLine]]:
    """The store lines of a reservation; budget keys carry the period id, so periods roll."""
    budgets: list[BudgetLine] = []
    infos: list[LineInfo] = []
    rates: list[RateLine] = []
    for s in scopes:
        b = s.budget
        period: Period = b.period if b else "month"
        pid = period_id(period, now)
        _, end = period_bounds(period, now)
        expire = int(end.timestamp()) + KEEP_EXPIRED_PERIOD_S if end else 0
        usd = usd_to_micros(b.usd) if b and b.usd is not None else None
        # The team's USD line is always kept, as an unlimited counter if need be: spend shows
        # in status and every request meets the config-version check of the store.
        if usd is not None or s.key_id is None:
            budgets.append(BudgetLine(f"b:{s.name}:usd:{pid}", "usd",
                                      UNLIMITED if usd is None else usd,
                                      estimate.cost_micros, expire))
            infos.append(LineInfo(s, period, pid))
        if b is not None and b.tokens is not None:
            budgets.append(BudgetLine(f"b:{s.name}:tok:{pid}", "tok", b.tokens,
                                      estimate.tokens, expire))
            infos.append(LineInfo(s, period, pid))
        if s.limits and s.limits.rpm:
            rates.append(RateLine(f"r:{s.name}:req", "req", s.limits.rpm, 1))
        if s.limits and s.limits.tpm:
            # A request larger than the whole minute may pass on a full bucket (and empty it)
            # rather than wait forever.
            rates.append(RateLine(f"r:{s.name}:tok", "tok", s.limits.tpm,
                                  min(estimate.tokens, s.limits.tpm)))
    return budgets, infos, rates


def key_scopes(team: TeamSettings, cfg: TeamConfig) -> list[Scope]:
    """Every key scope a status shows: named config keys and keys with run-time overrides."""
    ids = [f"cfg:{k.name}" for k in team.keys if not isinstance(k, str) and k.name]
    ids += [s.removeprefix("key:") for s in cfg.overrides if s.startswith("key:")]
    out: list[Scope] = []
    for kid in dict.fromkeys(ids):
        ks = next((k for k in team.keys if not isinstance(k, str) and f"cfg:{k.name}" == kid),
                  None)
        out += scopes_for(team, Principal("client", kid, team, ks), cfg)[1:]
    return out


def validated_patch(team: TeamSettings, current: dict[str, Any], key_id: str | None,
                    patch: dict[str, Any]) -> dict[str, Any]:
    """The stored override for a PATCH body: ``current`` plus ``patch``, checked like config."""
    if "limit_usd" in patch:
        patch["usd"] = patch.pop("limit_usd")
    budget_fields = {"usd", "tokens", "period", "alert_at", "alert_webhook"}
    limit_fields = {"rpm", "tpm"}
    unknown = set(patch) - budget_fields - limit_fields
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.",
                             param=sorted(unknown)[0])
    out = {"budget": {**current.get("budget", {}),
                      **{k: v for k, v in patch.items() if k in budget_fields}},
           "limits": {**current.get("limits", {}),
                      **{k: v for k, v in patch.items() if k in limit_fields}}}
    base_b, base_l = _configured(team, key_id)
    try:
        merge(base_b, out["budget"], BudgetSettings)
        merge(base_l, out["limits"], LimitsSettings)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"{where}: {err['msg']}", param=where or None) from None
    return out


def _configured(team: TeamSettings, key_id: str | None
                ) -> tuple[BudgetSettings | None, LimitsSettings | None]:
    """The budget and limits the config file gives the team, or one of its named keys."""
    if key_id is None:
        return team.budget, team.limits
    ks = next((k for k in team.keys if not isinstance(k, str) and key_id == f"cfg:{k.name}"),
              None)
    return (ks.budget, ks.limits) if ks is not None else (None, None)


def scope_status(s: Scope, by_key: dict[str, Counter], rate_left: dict[str, int],
                 now: float) -> dict[str, Any]:
    """One scope's part of GET /admin/teams/{team}/budget (the contract's fields, and more)."""
    period: Period = s.budget.period if s.budget else "month"
    start, end = period_bounds(period, now)
    pid = period_id(period, now)
    usd = by_key.get(f"b:{s.name}:usd:{pid}", Counter(0, 0))
    limit = usd_to_micros(s.budget.usd) if s.budget and s.budget.usd is not None else None
    body: dict[str, Any] = {
        "period": period, "period_id": pid, "period_start": start.isoformat(),
        "period_end": end.isoformat() if end else None,
        "limit_usd": None if limit is None else micros_to_usd(limit),
        "spent_usd": micros_to_usd(usd.spent), "reserved_usd": micros_to_usd(usd.reserved),
        "remaining_usd": None if limit is None else micros_to_usd(
            max(0, limit - usd.spent - usd.reserved)),
        "alert_at": s.budget.alert_at if s.budget else [],
    }
    if s.budget is not None and s.budget.tokens is not None:
        tok = by_key.get(f"b:{s.name}:tok:{pid}", Counter(0, 0))
        body.update(limit_tokens=s.budget.tokens, spent_tokens=tok.spent,
                    reserved_tokens=tok.reserved,
                    remaining_tokens=max(0, s.budget.tokens - tok.spent - tok.reserved))
    lim = s.limits
    body["limits"] = {
        "rpm": lim.rpm if lim else None, "tpm": lim.tpm if lim else None,
        "remaining_requests": rate_left.get(f"r:{s.name}:req"),
        "remaining_tokens": rate_left.get(f"r:{s.name}:tok"),
    }
    return body
