"""What the review page shows, computed apart from HTTP: highlighted texts and the team overview.

Highlighting works on segments, never on HTML: the text is cut at the findings' offsets and the
template escapes every piece, so a stored text can never inject markup into the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.budget.forecast import team_forecast
from gateway.budget.scopes import micros_to_usd
from gateway.services import Services
from gateway.stores.logs import FlagQuery, SpendQuery

OVERVIEW_DAYS = 14


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    label: str | None = None  # None: plain text; else the finding's label
    title: str = ""  # tooltip: rule, check, score


def highlight(text: str | None, rules: list[dict[str, Any]], direction: str) -> list[Segment]:
    """``text`` cut into plain and highlighted segments, from the findings of one direction.

    A rule without ``direction`` counts as input (the prompt). Overlapping or out-of-range spans
    are clipped rather than trusted: the offsets come from stored data.
    """
    text = text or ""
    spans: list[tuple[int, int, str, str]] = []
    for rule in rules:
        if (rule.get("direction") or "input") != direction:
            continue
        for f in rule.get("findings") or []:
            start, end = max(0, int(f.get("start", 0))), min(len(text), int(f.get("end", 0)))
            if start < end:
                title = (f"{rule.get('rule')} · {rule.get('check')} · {rule.get('action')} · "
                         f"score {float(f.get('score', 0)):.2f}")
                spans.append((start, end, str(f.get("label", "")), title))
    spans.sort()
    out: list[Segment] = []
    pos = 0
    for span_start, end, label, title in spans:
        start = max(span_start, pos)  # overlaps: the earlier finding keeps the shared text
        if start >= end:
            continue
        if start > pos:
            out.append(Segment(text[pos:start]))
        out.append(Segment(text[start:end], label, title))
        pos = end
    if pos < len(text) or not out:
        out.append(Segment(text[pos:]))
    return out


def when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


async def team_overview(s: Services, team: str) -> dict[str, Any]:
    """Spend against budget this period, top models this period, requests per day, open flags."""
    budget = await s.budgets.status(team)
    period_start = budget.get("period_start")
    since = (datetime.fromisoformat(period_start).timestamp() if period_start
             else time.time() - 30 * 86400)
    models = await s.log_store.spend(SpendQuery(team=team, group_by="model", since=since))
    days_since = time.time() - OVERVIEW_DAYS * 86400
    days = await s.log_store.spend(SpendQuery(team=team, group_by="day", since=days_since))
    days.sort(key=lambda r: r.group)
    counts = await s.log_store.count_flags(FlagQuery(team=team))
    forecast = (await team_forecast(s.budgets, s.log_store, team)).public()
    limit, spent = budget.get("limit_usd"), float(budget.get("spent_usd") or 0.0)
    top = [{"model": r.group or "(none)", "requests": r.requests,
            "cost_usd": micros_to_usd(r.cost_micros)} for r in models[:5]]
    most = max([d.requests for d in days] or [1])
    return {
        "team": team, "budget": budget,
        "used_pct": None if not limit else min(100.0, 100.0 * spent / float(limit)),
        "top_models": top,
        "days": [{"day": d.group, "requests": d.requests,
                  "bar_pct": 100.0 * d.requests / most} for d in days],
        "flags": counts,
        "forecast": forecast,
    }
