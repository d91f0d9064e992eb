"""One request's budget reservation: what it holds, the headers it shows, and its settlement.

A hold is settled or released exactly once; later calls are ignored. It does not talk to the
store itself: ``settle`` and ``top_up`` go through its ``Ledger`` (``Budgets``), which knows the
store, its timeout and what to do when it is away. A hold of a caller without a team (or with
nothing to count) has no ledger: everything on it succeeds at once.
"""

from __future__ import annotations

from typing import Protocol

from gateway.budget.scopes import LineInfo, micros_to_usd
from gateway.pricing import Estimate
from gateway.stores.budget import UNLIMITED, BudgetLine, BudgetStore, RateLine


class Ledger(Protocol):
    """Where a hold's settle and top-up are carried out (``Budgets``)."""

    async def settle(self, hold: Hold, cost_micros: int, tokens: int) -> None: ...

    async def top_up(self, hold: Hold, cost_micros: int, tokens: int) -> bool: ...


class Hold:
    """One request's reservation. Settle or release exactly once; later calls are ignored."""

    def __init__(self, ledger: Ledger | None, store: BudgetStore | None, team: str | None,
                 hold_id: str, lines: list[BudgetLine], infos: list[LineInfo],
                 rates: list[RateLine], estimate: Estimate, *, degraded: bool = False) -> None:
        self._ledger = ledger
        #: The store the hold lives in: the shared one, or the local limiter's when degraded.
        self.store = store
        self.team = team
        self.hold_id = hold_id
        #: The budget lines it reserves on (their amounts are ``amount`` / ``tokens``) and why
        #: each exists, and its rate lines.
        self.budget_lines = lines
        self.infos = infos
        self.rates = rates
        self.amount = estimate.cost_micros  # micro-dollars held now (grows with top-ups)
        self.tokens = estimate.tokens
        self.degraded = degraded
        self.done = False
        self._used: list[int] = []
        self._rate_remaining: list[int] = []

    @property
    def active(self) -> bool:
        return self._ledger is not None and bool(self.budget_lines or self.rates)

    def lines(self) -> tuple[BudgetLine, ...]:
        """The budget lines with what the hold holds on each now."""
        return tuple(BudgetLine(b.key, b.metric, b.limit,
                                self.amount if b.metric == "usd" else self.tokens, b.expire_at_s)
                     for b in self.budget_lines)

    def rate_lines(self) -> tuple[RateLine, ...]:
        return tuple(self.rates)

    def observe(self, used: tuple[int, ...] | list[int], remaining: tuple[int, ...]) -> None:
        """The store's counters after an operation on this hold, for ``headers``."""
        self._used = list(used)
        if remaining:
            self._rate_remaining = list(remaining)

    async def settle(self, cost_micros: int, tokens: int = 0) -> None:
        """Record the actual cost and give back the rest. Never raises (except cancellation)."""
        if self.done:
            return
        self.done = True
        if self._ledger is not None and self.active:
            await self._ledger.settle(self, cost_micros, tokens)

    async def release(self) -> None:
        """Give everything back: the request cost nothing (refused, failed, disconnected)."""
        await self.settle(0, 0)

    async def top_up(self, cost_micros: int, tokens: int = 0) -> bool:
        """Grow the hold by this much more; False when a budget has no room left for it.

        Pass ``tokens`` too when the team may have a token budget: a USD-only top-up leaves
        token budgets to be corrected at settlement.
        """
        if self.done:
            return False
        if self._ledger is None or not self.active:
            return True
        return await self._ledger.top_up(self, cost_micros, tokens)

    def predict_settled(self, cost_micros: int, tokens: int) -> None:
        """Show in ``headers()`` the figures the coming settle will leave: the reservation's
        counters with this hold's estimate replaced by the actual amounts. The answer can then
        leave before the store's settle round trip (other requests' changes since the
        reservation are not in the figure, as they would not be a moment later either)."""
        self._used = [used - (self.amount if b.metric == "usd" else self.tokens)
                      + (cost_micros if b.metric == "usd" else tokens)
                      for b, used in zip(self.budget_lines, self._used, strict=False)]

    def remaining_micros(self) -> int | None:
        left = [b.limit - u for b, u in zip(self.budget_lines, self._used, strict=False)
                if b.metric == "usd" and b.limit != UNLIMITED]
        return max(0, min(left)) if left else None

    def headers(self) -> dict[str, str]:
        """Budget and OpenAI-style rate-limit headers; with several scopes, the tightest one's."""
        h: dict[str, str] = {}
        rem = self.remaining_micros()
        if rem is not None:
            h["x-gateway-budget-remaining-usd"] = f"{micros_to_usd(rem):.6f}"
        for metric, word in (("req", "requests"), ("tok", "tokens")):
            pairs = [(r.limit, left) for r, left in zip(self.rates, self._rate_remaining,
                                                        strict=False) if r.metric == metric]
            if pairs:
                limit, left = min(pairs, key=lambda p: p[1])
                h[f"x-ratelimit-limit-{word}"] = str(limit)
                h[f"x-ratelimit-remaining-{word}"] = str(left)
        if self.degraded:
            h["x-gateway-degraded"] = "budget-store"
        return h
