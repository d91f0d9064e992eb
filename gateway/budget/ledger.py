"""The money path: reserve an estimate on every scope of a caller, settle the actual, top up.

A reservation covers every scope that applies to the caller (the team and, if configured, the
key; USD and token budgets per period; requests and tokens per minute) all or nothing, in one
atomic store operation. A hold is settled exactly once (``Hold`` ignores later calls), shielded
from cancellation: a client that goes away does not cancel the accounting of its request. A
settle the store cannot take now is kept and retried (``retry_settles``); meanwhile the hold
expires in the store on its own. While the store is away, the teams that allow it reserve and
settle on the local limiter (``degraded``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from gateway.auth import Principal
from gateway.budget.alerts import Claim, ThresholdAlerts
from gateway.budget.config import TeamConfigs
from gateway.budget.degraded import LocalLimiter
from gateway.budget.hold import Hold
from gateway.budget.link import Outage, StoreLink
from gateway.budget.scopes import MICROS, LineInfo, TeamConfig, lines_for, scopes_for
from gateway.budget.stats import BudgetStats
from gateway.errors import BudgetExceeded, RateLimited, StoreUnavailable
from gateway.pricing import Estimate
from gateway.records import RequestIds
from gateway.settings import TeamSettings
from gateway.stores.budget import (
    BudgetLine,
    RateLine,
    ReserveRequest,
    ReserveResult,
    SettleRequest,
)
from gateway.tasks import Spawned

log = logging.getLogger("gateway.budget")

MAX_PENDING_SETTLES = 10_000
Plan = tuple[list[BudgetLine], list[LineInfo], list[RateLine]]


class Ledger:
    """Reserve, settle, top up; ``Hold`` comes back here for its settle and top-up."""

    def __init__(self, teams: dict[str, TeamSettings], link: StoreLink, local: LocalLimiter,
                 configs: TeamConfigs, alerts: ThresholdAlerts, stats: BudgetStats, *,
                 clock: Callable[[], float], ttl_us: int) -> None:
        self._teams = teams
        self._link = link
        self._local = local
        self._configs = configs
        self._alerts = alerts
        self._stats = stats
        self._clock = clock
        self._ttl_us = ttl_us
        #: Holds of requests still running on this replica: renewed until they end.
        self.live: weakref.WeakValueDictionary[str, Hold] = weakref.WeakValueDictionary()
        self._hold_ids = RequestIds("h")
        self._plans: dict[tuple[str, str, int, int], Plan] = {}
        self.settles = Spawned()
        self._shared_claim: Claim = self._claim_shared
        self.pending: list[SettleRequest] = []  # settles the store did not take, to retry

    # reserve

    async def reserve(self, principal: Principal, estimate: Estimate) -> Hold:
        """Reserve ``estimate`` on every scope of the principal, all or nothing."""
        team = principal.team
        if team is None:
            return Hold(None, None, None, "", [], [], [], estimate)
        outage = self._link.serving_locally() if self._link.outage is not None else None
        if outage is not None:
            return await self._reserve_locally(team, principal, estimate, outage)
        try:
            return await self._reserve_shared(team, principal, estimate)
        except StoreUnavailable:
            outage = self._link.outage
            if team.on_store_error == "allow" and outage is not None:
                return await self._reserve_locally(team, principal, estimate, outage)
            self._stats.refused_store += 1
            raise

    async def _reserve_shared(self, team: TeamSettings, principal: Principal,
                              estimate: Estimate) -> Hold:
        link = self._link
        for _ in range(4):
            cfg = await self._configs.get(team.name)
            now = self._clock()
            budgets, infos, rates = self._plan(team, principal, cfg, estimate, now)
            hold = Hold(self, link.store, team.name, self._hold_ids.new(), budgets, infos,
                        rates, estimate)
            req = ReserveRequest(team.name, hold.hold_id, int(now * MICROS), self._ttl_us,
                                 cfg.version, hold.lines(), hold.rate_lines())
            result = await link.call(link.store.reserve(req))
            link.answered()
            if result.outcome == "stale":
                self._configs.forget(team.name)  # PATCHed elsewhere: reload and retry
                continue
            self._refuse_unless_ok(result, team, budgets, infos, rates)
            self._local.saw(team.name, budgets, result.used)
            hold.observe(result.used, result.rate_remaining)
            self.live[hold.hold_id] = hold
            return hold
        raise StoreUnavailable("The budget configuration kept changing; try again.")

    async def _reserve_locally(self, team: TeamSettings, principal: Principal,
                               estimate: Estimate, outage: Outage) -> Hold:
        if team.on_store_error != "allow":
            self._stats.refused_store += 1
            raise StoreUnavailable("The budget store is unavailable; try again shortly.")
        now = self._clock()
        budgets, infos, rates = lines_for(
            scopes_for(team, principal, self._configs.cached(team.name)), estimate, now)
        hold = Hold(self, outage.local, team.name, self._hold_ids.new(), budgets, infos, rates,
                    estimate, degraded=True)
        req = ReserveRequest(team.name, hold.hold_id, int(now * MICROS), self._ttl_us,
                             0, hold.lines(), hold.rate_lines())
        result = await self._local.reserve(outage.local, req)
        self._refuse_unless_ok(result, team, budgets, infos, rates)
        hold.observe(result.used, result.rate_remaining)
        self._stats.degraded_reservations += 1
        return hold

    def _plan(self, team: TeamSettings, principal: Principal, cfg: TeamConfig,
              estimate: Estimate, now: float) -> Plan:
        """``lines_for(scopes_for(...))``, memoized: for one key, config version and UTC day
        (every period rolls at a UTC midnight) only the amounts change, and a hold takes its
        budget amounts from the estimate anyway (``Hold.lines``); the token rate line is the
        only one priced here."""
        memo_key = (team.name, principal.key_id, cfg.version, int(now // 86_400))
        plan = self._plans.get(memo_key)
        if plan is None:
            if len(self._plans) > 10_000:
                self._plans.clear()
            plan = self._plans[memo_key] = lines_for(scopes_for(team, principal, cfg),
                                                     Estimate(0, 0, 0), now)
        budgets, infos, rates = plan
        if rates:
            rates = [r if r.metric != "tok" else
                     RateLine(r.key, r.metric, r.limit, min(estimate.tokens, r.limit))
                     for r in rates]
        return budgets, infos, rates

    def _refuse_unless_ok(self, result: ReserveResult, team: TeamSettings,
                          budgets: list[BudgetLine], infos: list[LineInfo],
                          rates: list[RateLine]) -> None:
        if result.outcome == "budget":
            self._stats.refused_budget += 1
            line, info = budgets[result.index], infos[result.index]
            what = "USD" if line.metric == "usd" else "token"
            window = {"day": "daily", "week": "weekly", "month": "monthly",
                      "total": "all-time"}[info.period]
            raise BudgetExceeded(f"{info.scope.label} '{team.name}' has exhausted its "
                                 f"{window} {what} budget ({info.period_id}).")
        if result.outcome == "rate":
            self._stats.refused_rate += 1
            r = rates[result.index]
            scope = r.key.split(":")[1:-1]
            unit = "requests" if r.metric == "req" else "tokens"
            raise RateLimited(f"Rate limit of {r.limit} {unit} per minute reached for "
                              f"{':'.join(scope)} of team '{team.name}'.",
                              retry_after_s=result.retry_after_us / MICROS)

    # settle, top up (a hold's own operations come here)

    async def settle(self, hold: Hold, cost_micros: int, tokens: int) -> None:
        """Settle ``hold`` at the actual cost; never raises (except cancellation)."""
        self.live.pop(hold.hold_id, None)
        assert hold.team is not None and hold.store is not None
        req = SettleRequest(hold.team, hold.hold_id, int(self._clock() * MICROS),
                            max(0, cost_micros), max(0, tokens), hold.lines(), hold.rate_lines())
        # Shielded: a client that disconnects must not cancel the accounting of its request.
        try:
            if self._link.inline:
                await self._settle_now(hold, req)
            else:
                await asyncio.shield(self.settles.spawn(self._settle_now(hold, req)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("settling hold %s failed", hold.hold_id)

    async def _settle_now(self, hold: Hold, req: SettleRequest) -> None:
        assert hold.store is not None
        if hold.degraded:
            counters = await hold.store.settle(req)
            self._local.settled(req)
        else:
            try:
                counters = await self._link.call(hold.store.settle(req))
            except StoreUnavailable:
                self._stats.settle_failures += 1
                log.error("settling hold %s of team %s failed; will retry (the hold expires "
                          "on its own meanwhile)", req.hold_id, req.team)
                if len(self.pending) < MAX_PENDING_SETTLES:
                    self.pending.append(req)
                return
        hold.observe([c.spent + c.reserved for c in counters], ())
        await self._alerts.check(req.team, req.budgets, hold.infos, counters,
                                 hold.store.claim if hold.degraded else self._shared_claim)

    async def _claim_shared(self, team: str, marker: str, expire_at_s: int) -> bool:
        return await self._link.call(self._link.store.claim(team, marker, expire_at_s))

    async def top_up(self, hold: Hold, cost_micros: int, tokens: int) -> bool:
        """Grow ``hold``; False when a budget has no room (or the store is away and the team
        does not allow serving without it)."""
        assert hold.team is not None and hold.store is not None
        # Ask for a quarter more than needed, so a long stream tops up a few times, not per chunk.
        asks = [(max(cost_micros, hold.amount // 4), max(tokens, hold.tokens // 4)),
                (cost_micros, tokens)]
        for usd, tok in dict.fromkeys(asks):
            lines = tuple(BudgetLine(b.key, b.metric, b.limit, usd if b.metric == "usd" else tok,
                                     b.expire_at_s) for b in hold.budget_lines)
            rates = tuple(RateLine(r.key, r.metric, r.limit, tok) for r in hold.rates
                          if r.metric == "tok")
            req = ReserveRequest(hold.team, hold.hold_id, int(self._clock() * MICROS),
                                 self._ttl_us, 0, lines, rates)
            try:
                result = await (hold.store.top_up(req) if hold.degraded
                                else self._link.call(hold.store.top_up(req)))
            except StoreUnavailable:
                team = self._teams.get(hold.team)
                return bool(team and team.on_store_error == "allow")
            if result.outcome == "ok":
                hold.amount += usd
                hold.tokens += tok
                hold.observe(result.used, ())
                return True
            if result.outcome == "stale":  # the hold expired: it cannot grow
                break
        self._stats.top_up_refusals += 1
        return False

    # kept alive by the maintenance task

    async def renew_live(self) -> None:
        """Push back the expiry of every hold whose request still runs here."""
        by_team: dict[str, list[str]] = {}
        for hold in list(self.live.values()):
            if not hold.done and not hold.degraded and hold.team is not None:
                by_team.setdefault(hold.team, []).append(hold.hold_id)
        now = int(self._clock() * MICROS)
        for team, ids in by_team.items():
            await self._link.call(self._link.store.renew(team, ids, now, self._ttl_us))

    async def retry_settles(self) -> None:
        """Send the settles the store did not take, oldest first, while it answers."""
        while self.pending and self._link.outage is None:
            req = self.pending[0]
            await self._link.call(self._link.store.settle(req))
            self.pending.pop(0)
