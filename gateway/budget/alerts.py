"""Budget alerts: which thresholds (``alert_at``) a settle crossed, claimed once per period.

A threshold fires once per budget line and period across every replica: the first replica to
claim its marker in the store sends it (``ops.alerts.AlertSender`` delivers), the others find it
claimed. A claim that cannot reach the store is tried again at the next settle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from gateway.budget.scopes import LineInfo, micros_to_usd
from gateway.errors import StoreUnavailable
from gateway.ops.alerts import Alert, AlertSender
from gateway.stores.budget import UNLIMITED, BudgetLine, Counter

#: ``claim(team, marker, expire_at_s)``: True for the first claim of a marker.
Claim = Callable[[str, str, int], Awaitable[bool]]
MAX_REMEMBERED = 100_000


class ThresholdAlerts:
    def __init__(self, sender: AlertSender) -> None:
        self.sender = sender
        self._alerted: set[str] = set()  # markers this replica has seen claimed (by anyone)

    async def check(self, team: str, lines: Sequence[BudgetLine], infos: Sequence[LineInfo],
                    counters: Sequence[Counter], claim: Claim) -> None:
        """Send the alerts of every threshold the counters (after a settle) have crossed."""
        for line, info, c in zip(lines, infos, counters, strict=False):
            for th in self._crossed(team, line, info, c):
                marker = f"{line.key}:{th}"
                try:
                    first = await claim(team, marker, line.expire_at_s)
                except StoreUnavailable:
                    return  # the next settle tries again
                if len(self._alerted) > MAX_REMEMBERED:
                    self._alerted.clear()
                self._alerted.add(f"{team}/{marker}")
                if first:
                    self.sender.send(_alert(team, line, info, c, th))

    def _crossed(self, team: str, line: BudgetLine, info: LineInfo, c: Counter) -> list[float]:
        """The line's thresholds its spend has reached and this replica has not seen claimed."""
        b = info.scope.budget
        if b is None or not b.alert_at or line.limit in (UNLIMITED, 0):
            return []
        return [th for th in b.alert_at if c.spent >= th * line.limit
                and f"{team}/{line.key}:{th}" not in self._alerted]


def _alert(team: str, line: BudgetLine, info: LineInfo, c: Counter, threshold: float) -> Alert:
    usd = line.metric == "usd"
    return Alert(team=team, key=info.scope.key_id, metric="usd" if usd else "tokens",
                 period=info.period, period_id=info.period_id,
                 spent=micros_to_usd(c.spent) if usd else c.spent,
                 limit=micros_to_usd(line.limit) if usd else line.limit,
                 threshold=threshold, webhook=info.scope.webhook)
