"""Budgets and rate limits: reserve an estimate before the upstream call, settle the actual after.

The request path sees ``Budgets.reserve(principal, estimate) -> Hold`` and the hold's
``settle`` / ``release`` / ``top_up``; where the numbers live is the store's business
(``stores/budget_*.py``). A reservation covers every scope that applies to the caller (the team
and, if configured, the key; USD and token budgets per period; requests and tokens per minute)
all or nothing, in one atomic store operation. Every hold is settled or released exactly once
(both idempotent, both shielded from cancellation), and a hold nobody settles expires in the
store after ``stores.budget_hold_ttl_s`` because only a live replica renews it.

Fails closed: when the store does not answer within ``stores.budget_timeout_s`` the request is
refused with 503 ``store_unavailable``, unless the team says ``on_store_error: allow``; then the
replica serves against an in-process limiter seeded with the last numbers it saw, marks responses
``x-gateway-degraded``, and adds what it served to the store once the store answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from gateway.auth import Principal
from gateway.budget.scopes import (
    MICROS,
    LineInfo,
    TeamConfig,
    key_scopes,
    lines_for,
    micros_to_usd,
    period_bounds,
    period_id,
    scope_status,
    scopes_for,
    usd_to_micros,
    validated_patch,
)
from gateway.errors import BudgetExceeded, InvalidRequest, NotFound, RateLimited, StoreUnavailable
from gateway.ops.alerts import Alert, AlertSender
from gateway.pricing import Estimate
from gateway.records import RequestIds
from gateway.settings import Settings, TeamSettings
from gateway.stores.backends import open_budget_store
from gateway.stores.budget import (
    UNLIMITED,
    BudgetLine,
    BudgetStore,
    Counter,
    RateLine,
    ReserveRequest,
    ReserveResult,
    SettleRequest,
    StoreError,
)
from gateway.stores.budget_memory import MemoryBudgetStore
from gateway.stores.budget_rules import ns

# Re-exported: the request path, pricing and admin import these from here.
__all__ = ["Budgets", "Hold", "micros_to_usd", "period_bounds", "period_id",
           "usd_to_micros"]

log = logging.getLogger("gateway.budget")
T = TypeVar("T")

PROBE_INTERVAL_S = 1.0  # while the store is away, how often one request tries it again
MAX_PENDING_SETTLES = 10_000


# --- holds -----------------------------------------------------------------------------------


class Hold:
    """One request's reservation. Settle or release exactly once; later calls are ignored."""

    def __init__(self, owner: Budgets | None, store: BudgetStore | None, team: str | None,
                 hold_id: str, lines: list[BudgetLine], infos: list[LineInfo],
                 rates: list[RateLine], estimate: Estimate, *, degraded: bool = False) -> None:
        self._owner = owner
        self._store = store
        self.team = team
        self.hold_id = hold_id
        self._lines = lines
        self._infos = infos
        self._rates = rates
        self.amount = estimate.cost_micros  # micro-dollars held now (grows with top-ups)
        self.tokens = estimate.tokens
        self.degraded = degraded
        self.done = False
        self.cutoff_reason: str | None = None  # why a top-up was refused, for the request log
        self._used: list[int] = []
        self._rate_remaining: list[int] = []

    @property
    def active(self) -> bool:
        return self._owner is not None and bool(self._lines or self._rates)

    def lines(self) -> tuple[BudgetLine, ...]:
        return tuple(BudgetLine(b.key, b.metric, b.limit,
                                self.amount if b.metric == "usd" else self.tokens, b.expire_at_s)
                     for b in self._lines)

    def rate_lines(self) -> tuple[RateLine, ...]:
        return tuple(self._rates)

    def _observe(self, used: tuple[int, ...] | list[int], remaining: tuple[int, ...]) -> None:
        self._used = list(used)
        if remaining:
            self._rate_remaining = list(remaining)

    async def settle(self, cost_micros: int, tokens: int = 0) -> None:
        """Record the actual cost and give back the rest. Never raises (except cancellation)."""
        if self.done:
            return
        self.done = True
        if self._owner is not None and self.active:
            await self._owner._settle(self, cost_micros, tokens)

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
        if self._owner is None or not self.active:
            return True
        return await self._owner._top_up(self, cost_micros, tokens)

    async def ensure(self, cost_micros: int, tokens: int = 0) -> bool:
        """Make the hold cover a running total (a stream's cost so far); False if it cannot."""
        need_usd = max(0, cost_micros - self.amount)
        need_tok = max(0, tokens - self.tokens)
        if need_usd == 0 and need_tok == 0:
            return True
        return await self.top_up(need_usd, need_tok)

    def predict_settled(self, cost_micros: int, tokens: int) -> None:
        """Show in ``headers()`` the figures the coming settle will leave: the reservation's
        counters with this hold's estimate replaced by the actual amounts. The answer can then
        leave before the store's settle round trip (other requests' changes since the
        reservation are not in the figure, as they would not be a moment later either)."""
        self._used = [used - (self.amount if b.metric == "usd" else self.tokens)
                      + (cost_micros if b.metric == "usd" else tokens)
                      for b, used in zip(self._lines, self._used, strict=False)]

    def remaining_micros(self) -> int | None:
        left = [b.limit - u for b, u in zip(self._lines, self._used, strict=False)
                if b.metric == "usd" and b.limit != UNLIMITED]
        return max(0, min(left)) if left else None

    def headers(self) -> dict[str, str]:
        """Budget and OpenAI-style rate-limit headers; with several scopes, the tightest one's."""
        h: dict[str, str] = {}
        rem = self.remaining_micros()
        if rem is not None:
            h["x-gateway-budget-remaining-usd"] = f"{micros_to_usd(rem):.6f}"
        for metric, word in (("req", "requests"), ("tok", "tokens")):
            pairs = [(r.limit, left) for r, left in zip(self._rates, self._rate_remaining,
                                                        strict=False) if r.metric == metric]
            if pairs:
                limit, left = min(pairs, key=lambda p: p[1])
                h[f"x-ratelimit-limit-{word}"] = str(limit)
                h[f"x-ratelimit-remaining-{word}"] = str(left)
        if self.degraded:
            h["x-gateway-degraded"] = "budget-store"
        return h


# --- the service -----------------------------------------------------------------------------


@dataclass(slots=True)
class BudgetStats:
    """Counters exported on /metrics (see ``Budgets.metrics``)."""

    store_errors: int = 0
    degraded_reservations: int = 0
    settle_failures: int = 0
    refused_budget: int = 0
    refused_rate: int = 0
    refused_store: int = 0
    top_up_refusals: int = 0
    reconciled_micros: int = 0


@dataclass(slots=True)
class _Degraded:
    """The shared store is away: when to try it again, and what to add to it once it is back."""

    since: float
    next_probe: float
    local: MemoryBudgetStore = field(default_factory=MemoryBudgetStore)


class Budgets:
    """Every team's budgets and limits, built once in ``create_app``."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 store: BudgetStore | None = None, alerts: AlertSender | None = None) -> None:
        self._teams = {t.name: t for t in settings.teams}
        self._clock = clock
        self._store = store if store is not None else open_budget_store(settings.stores)
        # An in-process store answers without awaiting anything: it can neither hang nor be
        # interrupted half-way, so its calls skip the timeout and the shielded settle task.
        self._inline = isinstance(self._store, MemoryBudgetStore)
        self._timeout = settings.stores.budget_timeout_s
        self._workers = settings.server.workers
        self._store_url = settings.stores.budgets
        self._ttl_us = int(settings.stores.budget_hold_ttl_s * MICROS)
        self.alerts = alerts if alerts is not None else AlertSender()
        self.stats = BudgetStats()
        self._config: dict[str, TeamConfig] = {}
        self._live: weakref.WeakValueDictionary[str, Hold] = weakref.WeakValueDictionary()
        self._hold_ids = RequestIds("h")
        self._plans: dict[tuple[str, str, int, int], tuple[
            list[BudgetLine], list[LineInfo], list[RateLine]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: list[SettleRequest] = []
        self._last_used: dict[tuple[str, str], int] = {}
        self._unsynced: dict[tuple[str, str], list[int]] = {}  # (team, key) -> [amount, expire]
        self._batches: dict[str, tuple[str, list[tuple[str, int, int]]]] = {}
        self._sync_lock = asyncio.Lock()
        self._alerted: set[str] = set()
        self._degraded: _Degraded | None = None
        self._maintainer: asyncio.Task[None] | None = None

    # lifecycle

    async def open(self) -> None:
        if self._workers > 1 and self._store_url.startswith("memory://"):
            log.warning("stores.budgets is memory:// with %d workers: each worker enforces the "
                        "budgets on its own; use sqlite:// or redis:// to share them",
                        self._workers)
        await self._store.open()
        await self.alerts.start()
        if self._maintainer is None:
            self._maintainer = asyncio.create_task(self._maintain(), name="budget-maintenance")

    async def close(self) -> None:
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
            self._maintainer = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        with contextlib.suppress(Exception):
            await self._flush_pending()
            await self._reconcile()
        await self.alerts.close()
        await self._store.close()

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store does not answer (for /readyz)."""
        await self._call(self._store.ping())

    @property
    def degraded(self) -> bool:
        return self._degraded is not None

    def metrics(self) -> dict[str, float]:
        """Prometheus samples (name -> value); ``*_total`` are counters, the rest gauges."""
        s = self.stats
        return {
            "gateway_budget_degraded": 1.0 if self._degraded else 0.0,
            "gateway_budget_store_errors_total": s.store_errors,
            "gateway_budget_degraded_reservations_total": s.degraded_reservations,
            "gateway_budget_settle_failures_total": s.settle_failures,
            "gateway_budget_pending_settles": len(self._pending),
            "gateway_budget_refusals_budget_total": s.refused_budget,
            "gateway_budget_refusals_rate_total": s.refused_rate,
            "gateway_budget_refusals_store_total": s.refused_store,
            "gateway_budget_top_up_refusals_total": s.top_up_refusals,
            "gateway_budget_live_holds": len(self._live),
            "gateway_budget_alerts_delivered_total": self.alerts.delivered,
            "gateway_budget_alerts_failed_total": self.alerts.failed,
        }

    # store calls: bounded, and errors become StoreError

    async def _call(self, aw: Awaitable[T]) -> T:
        if self._inline:
            return await aw
        try:
            async with asyncio.timeout(self._timeout):  # no extra task, unlike wait_for in 3.11
                return await aw
        except (TimeoutError, StoreError, OSError) as exc:
            self.stats.store_errors += 1
            self._store_down()
            raise StoreUnavailable("The budget store is unavailable; try again shortly.") from exc

    def _store_down(self) -> None:
        now = time.monotonic()
        if self._degraded is None:
            log.error("budget store unavailable; failing closed (teams with on_store_error: "
                      "allow are served by a local limiter)")
            self._degraded = _Degraded(now, now + PROBE_INTERVAL_S)
        else:
            self._degraded.next_probe = now + PROBE_INTERVAL_S

    def _store_up(self) -> None:
        if self._degraded is not None:
            log.warning("budget store is back after %.1fs", time.monotonic() - self._degraded.since)
            self._degraded = None
            self._spawn(self._reconcile())

    def _spawn(self, aw: Awaitable[Any]) -> asyncio.Task[Any]:
        async def run() -> Any:
            return await aw
        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _team_config(self, team: str) -> TeamConfig:
        cfg = self._config.get(team)
        if cfg is None:
            version, raw = await self._call(self._store.get_config(team))
            cfg = TeamConfig(version, {k: orjson.loads(v) for k, v in raw.items()})
            self._config[team] = cfg
        return cfg

    # reserve

    async def reserve(self, principal: Principal, estimate: Estimate) -> Hold:
        """Reserve ``estimate`` on every scope of the principal, all or nothing."""
        team = principal.team
        if team is None:
            return Hold(None, None, None, "", [], [], [], estimate)
        d = self._degraded
        if d is not None and time.monotonic() < d.next_probe:
            return await self._reserve_degraded(team, principal, estimate, d)
        try:
            return await self._reserve_remote(team, principal, estimate)
        except StoreUnavailable:
            d = self._degraded
            if team.on_store_error == "allow" and d is not None:
                return await self._reserve_degraded(team, principal, estimate, d)
            self.stats.refused_store += 1
            raise

    async def _reserve_remote(self, team: TeamSettings, principal: Principal,
                              estimate: Estimate) -> Hold:
        for _ in range(4):
            cfg = await self._team_config(team.name)
            now = self._clock()
            budgets, infos, rates = self._lines(team, principal, cfg, estimate, now)
            hold = Hold(self, self._store, team.name, self._hold_ids.new(), budgets, infos,
                        rates, estimate)
            req = ReserveRequest(team.name, hold.hold_id, int(now * MICROS), self._ttl_us,
                                 cfg.version, hold.lines(), hold.rate_lines())
            result = await self._call(self._store.reserve(req))
            self._store_up()
            if result.outcome == "stale":
                self._config.pop(team.name, None)  # PATCHed elsewhere: reload and retry
                continue
            self._refuse_unless_ok(result, team, budgets, infos, rates)
            for line, used in zip(budgets, result.used, strict=True):
                self._last_used[(team.name, line.key)] = used
            hold._observe(result.used, result.rate_remaining)
            self._live[hold.hold_id] = hold
            return hold
        raise StoreUnavailable("The budget configuration kept changing; try again.")

    def _lines(self, team: TeamSettings, principal: Principal, cfg: TeamConfig,
               estimate: Estimate, now: float
               ) -> tuple[list[BudgetLine], list[LineInfo], list[RateLine]]:
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
            self.stats.refused_budget += 1
            line, info = budgets[result.index], infos[result.index]
            what = "USD" if line.metric == "usd" else "token"
            window = {"day": "daily", "week": "weekly", "month": "monthly",
                      "total": "all-time"}[info.period]
            raise BudgetExceeded(f"{info.scope.label} '{team.name}' has exhausted its "
                                 f"{window} {what} budget ({info.period_id}).")
        if result.outcome == "rate":
            self.stats.refused_rate += 1
            r = rates[result.index]
            scope = r.key.split(":")[1:-1]
            unit = "requests" if r.metric == "req" else "tokens"
            raise RateLimited(f"Rate limit of {r.limit} {unit} per minute reached for "
                              f"{':'.join(scope)} of team '{team.name}'.",
                              retry_after_s=result.retry_after_us / MICROS)

    async def _reserve_degraded(self, team: TeamSettings, principal: Principal,
                                estimate: Estimate, d: _Degraded) -> Hold:
        if team.on_store_error != "allow":
            self.stats.refused_store += 1
            raise StoreUnavailable("The budget store is unavailable; try again shortly.")
        cfg = self._config.get(team.name) or TeamConfig(0, {})
        now = self._clock()
        budgets, infos, rates = lines_for(scopes_for(team, principal, cfg), estimate, now)
        hold = Hold(self, d.local, team.name, self._hold_ids.new(), budgets, infos, rates,
                    estimate, degraded=True)
        for line in budgets:  # start from the last shared numbers this replica saw
            if ns(team.name, line.key) not in d.local.state.counters:
                seen = self._last_used.get((team.name, line.key), 0)
                d.local.state.add(ns(team.name, line.key), seen, 0, 0)
        req = ReserveRequest(team.name, hold.hold_id, int(now * MICROS), self._ttl_us,
                             0, hold.lines(), hold.rate_lines())
        result = await d.local.reserve(req)
        self._refuse_unless_ok(result, team, budgets, infos, rates)
        hold._observe(result.used, result.rate_remaining)
        self.stats.degraded_reservations += 1
        return hold

    # settle, top up

    async def _settle(self, hold: Hold, cost_micros: int, tokens: int) -> None:
        self._live.pop(hold.hold_id, None)
        assert hold.team is not None and hold._store is not None
        req = SettleRequest(hold.team, hold.hold_id, int(self._clock() * MICROS),
                            max(0, cost_micros), max(0, tokens), hold.lines(), hold.rate_lines())
        # Shielded: a client that disconnects must not cancel the accounting of its request.
        try:
            if self._inline:
                await self._settle_now(hold, req)
            else:
                await asyncio.shield(self._spawn(self._settle_now(hold, req)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("settling hold %s failed", hold.hold_id)

    async def _settle_now(self, hold: Hold, req: SettleRequest) -> None:
        if hold.degraded:
            assert hold._store is not None
            counters = await hold._store.settle(req)
            for line in req.budgets:
                actual = req.actual_usd if line.metric == "usd" else req.actual_tok
                if actual:
                    entry = self._unsynced.setdefault((req.team, line.key), [0, line.expire_at_s])
                    entry[0] += actual
        else:
            try:
                counters = await self._call(self._store.settle(req))
            except StoreUnavailable:
                self.stats.settle_failures += 1
                log.error("settling hold %s of team %s failed; will retry (the hold expires "
                          "on its own meanwhile)", req.hold_id, req.team)
                if len(self._pending) < MAX_PENDING_SETTLES:
                    self._pending.append(req)
                return
        hold._observe([c.spent + c.reserved for c in counters], ())
        await self._check_alerts(hold, req, counters)

    async def _top_up(self, hold: Hold, cost_micros: int, tokens: int) -> bool:
        assert hold.team is not None and hold._store is not None
        # Ask for a quarter more than needed, so a long stream tops up a few times, not per chunk.
        asks = [(max(cost_micros, hold.amount // 4), max(tokens, hold.tokens // 4)),
                (cost_micros, tokens)]
        for usd, tok in dict.fromkeys(asks):
            lines = tuple(BudgetLine(b.key, b.metric, b.limit, usd if b.metric == "usd" else tok,
                                     b.expire_at_s) for b in hold._lines)
            rates = tuple(RateLine(r.key, r.metric, r.limit, tok) for r in hold._rates
                          if r.metric == "tok")
            req = ReserveRequest(hold.team, hold.hold_id, int(self._clock() * MICROS),
                                 self._ttl_us, 0, lines, rates)
            try:
                result = await (hold._store.top_up(req) if hold.degraded
                                else self._call(hold._store.top_up(req)))
            except StoreUnavailable:
                team = self._teams.get(hold.team)
                hold.cutoff_reason = "budget store unavailable"
                return bool(team and team.on_store_error == "allow")
            if result.outcome == "ok":
                hold.amount += usd
                hold.tokens += tok
                hold._observe(result.used, ())
                return True
            if result.outcome == "stale":
                hold.cutoff_reason = "hold expired"
                break
            info = hold._infos[result.index]
            hold.cutoff_reason = (f"budget_exhausted: {info.scope.name} "
                                  f"{hold._lines[result.index].metric} {info.period_id}")
        self.stats.top_up_refusals += 1
        return False

    # alerts

    async def _check_alerts(self, hold: Hold, req: SettleRequest,
                            counters: tuple[Counter, ...]) -> None:
        for line, info, c in zip(req.budgets, hold._infos, counters, strict=False):
            b = info.scope.budget
            if b is None or not b.alert_at or line.limit in (UNLIMITED, 0):
                continue
            for th in b.alert_at:
                marker = f"{line.key}:{th}"
                if c.spent < th * line.limit or f"{req.team}/{marker}" in self._alerted:
                    continue
                try:
                    first = await (hold._store.claim(req.team, marker, line.expire_at_s)
                                   if hold._store is not None and hold.degraded
                                   else self._call(self._store.claim(req.team, marker,
                                                                     line.expire_at_s)))
                except StoreUnavailable:
                    return  # the next settle tries again
                if len(self._alerted) > 100_000:
                    self._alerted.clear()
                self._alerted.add(f"{req.team}/{marker}")
                if first:
                    usd = line.metric == "usd"
                    self.alerts.send(Alert(
                        team=req.team, key=info.scope.key_id,
                        metric="usd" if usd else "tokens", period=info.period,
                        period_id=info.period_id,
                        spent=micros_to_usd(c.spent) if usd else c.spent,
                        limit=micros_to_usd(line.limit) if usd else line.limit,
                        threshold=th, webhook=info.scope.webhook))

    # background: renew live holds, retry settles, reconcile degraded spend

    async def _maintain(self) -> None:
        tick = min(1.0, self._ttl_us / MICROS / 4)
        renew_every = self._ttl_us / MICROS / 3
        last_renew = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            try:
                if time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    await self._renew()
                if self._degraded is not None and time.monotonic() >= self._degraded.next_probe:
                    await self._call(self._store.ping())
                    self._store_up()
                await self._flush_pending()
                if self._degraded is None and (self._unsynced or self._batches):
                    await self._reconcile()
            except StoreUnavailable:
                continue
            except Exception:
                log.exception("budget maintenance failed")

    async def _renew(self) -> None:
        by_team: dict[str, list[str]] = {}
        for hold in list(self._live.values()):
            if not hold.done and not hold.degraded and hold.team is not None:
                by_team.setdefault(hold.team, []).append(hold.hold_id)
        now = int(self._clock() * MICROS)
        for team, ids in by_team.items():
            await self._call(self._store.renew(team, ids, now, self._ttl_us))

    async def _flush_pending(self) -> None:
        while self._pending and self._degraded is None:
            req = self._pending[0]
            await self._call(self._store.settle(req))
            self._pending.pop(0)

    async def _reconcile(self) -> None:
        """Add the spend served by the local limiter while the store was away.

        Amounts move into a batch with a fixed id before they are sent, and a failed batch is
        resent with the same id: the store applies a batch id once, so nothing counts twice.
        """
        async with self._sync_lock:
            for (team, key), (amount, expire) in list(self._unsynced.items()):
                batch = self._batches.setdefault(team, (secrets.token_hex(8), []))
                batch[1].append((key, amount, expire))
                del self._unsynced[(team, key)]
            for team, (batch_id, entries) in list(self._batches.items()):
                await self._call(self._store.add_spent(team, batch_id, entries,
                                                       int(self._clock() * MICROS)))
                del self._batches[team]
                self.stats.reconciled_micros += sum(
                    a for k, a, _ in entries if k.startswith("b:team:usd"))
                log.warning("reconciled degraded spend of team %s into the budget store", team)

    # admin

    def _team(self, team_name: str) -> TeamSettings:
        team = self._teams.get(team_name)
        if team is None:
            raise NotFound(f"No team named '{team_name}'.")
        return team

    async def status(self, team_name: str) -> dict[str, Any]:
        """The body of GET /admin/teams/{team}/budget, plus tokens, limits and per-key budgets."""
        team = self._team(team_name)
        self._config.pop(team_name, None)  # admin reads are rare: always show the stored config
        cfg = await self._team_config(team_name)
        now = self._clock()
        scopes = scopes_for(team, Principal("client", "", team), cfg)
        keys = key_scopes(team, cfg)
        budgets, _, rates = lines_for(scopes + keys, Estimate(0, 0, 0), now)
        counters, remaining = await self._call(self._store.usage(
            team_name, [b.key for b in budgets], rates, int(now * MICROS)))
        by_key = dict(zip([b.key for b in budgets], counters, strict=True))
        rate_left = dict(zip([r.key for r in rates], remaining, strict=True))
        body = scope_status(scopes[0], by_key, rate_left, now)
        body = {"team": team_name, **body, "on_store_error": team.on_store_error,
                "degraded": self.degraded, "config_version": cfg.version}
        body["keys"] = [{"key": s.key_id, **scope_status(s, by_key, rate_left, now)}
                        for s in keys]
        return body

    async def update(self, team_name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """PATCH a team's (or one key's) budget and limits at run time, on every replica.

        Body: any of ``usd``, ``tokens``, ``period``, ``alert_at``, ``alert_webhook``, ``rpm``,
        ``tpm`` (null removes a limit), optional ``key`` (a key id such as ``cfg:alice``) to
        change that key's scope instead of the team's, or ``{"reset": true}`` to return to the
        configuration file. The change is stored in the budget store with a new version; every
        replica's next reserve sees the version change and reloads.
        """
        team = self._team(team_name)
        if not isinstance(patch, dict):
            raise InvalidRequest("The body must be a JSON object.")
        patch = dict(patch)
        key_id = patch.pop("key", None)
        if key_id is not None and not isinstance(key_id, str):
            raise InvalidRequest("'key' must be a key id string.", param="key")
        scope = "team" if key_id is None else f"key:{key_id}"
        self._config.pop(team_name, None)
        cfg = await self._team_config(team_name)
        value = None
        if not patch.pop("reset", False):
            current = cfg.overrides.get(scope, {})
            value = orjson.dumps(validated_patch(team, current, key_id, patch)).decode()
        await self._call(self._store.set_config(team_name, scope, value))
        self._config.pop(team_name, None)
        return await self.status(team_name)
