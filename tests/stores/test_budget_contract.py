"""One contract for every budget store: memory://, sqlite:// and redis:// must behave the same.

The tests drive ``Budgets`` (the interface the request path uses) over each backend with an
injected clock. "Replicas" are separate ``Budgets`` objects with their own store connections
(memory shares one store object, since it cannot be shared otherwise), so the concurrency tests
race real connections against one SQLite file or one Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import Principal
from gateway.budget.budgets import Budgets
from gateway.budget.hold import Hold
from gateway.budget.scopes import usd_to_micros
from gateway.errors import BudgetExceeded, InvalidRequest, RateLimited, StoreUnavailable
from gateway.pricing import Estimate
from gateway.settings import Settings, TeamSettings, parse_settings
from gateway.stores.budget_memory import MemoryBudgetStore
from tests.fakes.freezable_proxy import FreezableProxy

T0 = datetime(2037, 11, 15, tzinfo=UTC).timestamp()  # a Sunday mid-month, in the future: Redis
# expires a finished period's counters at a real date (a week after it ends), so a past T0 would
# find them gone


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Backend:
    name: str
    url: str
    prefix: str = "gw"
    shared: MemoryBudgetStore | None = None
    made: list[Budgets] = field(default_factory=list)
    freeze: Any = None  # a callable returning a context manager that freezes the store

    def settings(self, teams: list[dict[str, Any]], **stores: Any) -> Settings:
        return parse_settings({
            "stores": {"budgets": self.url, "budget_key_prefix": self.prefix,
                       "budget_timeout_s": 2.0, **stores},
            "models": [{"name": "m", "provider": "mock"}],
            "teams": teams,
        })

    async def budgets(self, settings: Settings, clock: Clock) -> Budgets:
        b = Budgets(settings, clock=clock, store=self.shared)
        await b.open()
        self.made.append(b)
        return b


@contextlib.contextmanager
def _sqlite_lock(path: str) -> Iterator[None]:
    """Another process-like connection holding the write lock: a 'frozen' SQLite store."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    proxy: FreezableProxy | None = None
    if request.param == "memory":
        b = Backend("memory", "memory://", shared=MemoryBudgetStore())
    elif request.param == "sqlite":
        path = str(tmp_path / "budgets.db")
        b = Backend("sqlite", f"sqlite:///{path}", freeze=lambda: _sqlite_lock(path))
    else:
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        proxy = FreezableProxy(url)
        await proxy.start()
        b = Backend("redis", proxy.url, prefix=prefix.rstrip(":"), freeze=proxy.frozen)
    try:
        yield b
    finally:
        for made in b.made:
            await made.close()
        if proxy is not None:
            await proxy.stop()


def team(name: str = "t", **kw: Any) -> dict[str, Any]:
    return {"name": name, "keys": [f"sk-{name}-plain"], **kw}


def principal(s: Settings, team_name: str = "t", key_name: str | None = None) -> Principal:
    t: TeamSettings = next(x for x in s.teams if x.name == team_name)
    ks = next((k for k in t.keys if not isinstance(k, str) and k.name == key_name), None)
    kid = f"cfg:{key_name}" if key_name else "cfg:plain"
    return Principal("client", kid, t, ks)


def est(usd: float, tokens: int = 10) -> Estimate:
    return Estimate(tokens // 2, tokens - tokens // 2, usd_to_micros(usd))


# --- reserve, settle, release ----------------------------------------------------------------


async def test_reserve_settle_release(backend: Backend) -> None:
    s = backend.settings([team(budget={"usd": 1.0, "period": "month"})])
    b = await backend.budgets(s, Clock())
    p = principal(s)
    hold = await b.reserve(p, est(0.30))
    st = await b.status("t")
    assert (st["reserved_usd"], st["spent_usd"], st["remaining_usd"]) == (0.30, 0.0, 0.70)
    assert hold.headers()["x-gateway-budget-remaining-usd"] == "0.700000"
    await hold.settle(usd_to_micros(0.12), 100)
    await hold.settle(usd_to_micros(5.0), 100)  # idempotent: the second call is ignored
    await hold.release()
    st = await b.status("t")
    assert (st["reserved_usd"], st["spent_usd"], st["remaining_usd"]) == (0.0, 0.12, 0.88)
    assert st["period"] == "month" and st["period_start"].startswith("2037-11-01")
    assert hold.headers()["x-gateway-budget-remaining-usd"] == "0.880000"
    h2 = await b.reserve(p, est(0.88))
    await h2.release()
    with pytest.raises(BudgetExceeded):
        await b.reserve(p, est(0.89))
    assert (await b.status("t"))["reserved_usd"] == 0.0


async def test_concurrent_reserves_never_exceed(backend: Backend) -> None:
    """50 requests race across three replicas for room for exactly 10 of them."""
    s = backend.settings([team(budget={"usd": 1.0})])
    clock = Clock()
    replicas = [await backend.budgets(s, clock) for _ in range(3)]
    p = principal(s)
    first = await replicas[0].reserve(p, est(0.90))
    await first.settle(usd_to_micros(0.90))

    async def one(i: int) -> Hold | None:
        try:
            return await replicas[i % 3].reserve(p, est(0.01))
        except BudgetExceeded:
            return None

    holds = await asyncio.gather(*(one(i) for i in range(50)))
    won = [h for h in holds if h is not None]
    assert len(won) == 10
    st = await replicas[1].status("t")
    assert st["reserved_usd"] == pytest.approx(0.10) and st["remaining_usd"] == 0.0
    await asyncio.gather(*(h.settle(usd_to_micros(0.01)) for h in won))
    st = await replicas[2].status("t")
    assert st["spent_usd"] == pytest.approx(1.0) and st["reserved_usd"] == 0.0


async def test_period_rollover_needs_no_reset(backend: Backend) -> None:
    s = backend.settings([team(budget={"usd": 1.0, "period": "day"})])
    clock = Clock(T0 + 86400 - 1)  # the last second of 2037-11-15
    b = await backend.budgets(s, clock)
    p = principal(s)
    h = await b.reserve(p, est(1.0))
    await h.settle(usd_to_micros(1.0))
    with pytest.raises(BudgetExceeded, match="daily USD budget"):
        await b.reserve(p, est(0.01))
    clock.t += 1
    st = await b.status("t")
    assert st["period_start"].startswith("2037-11-16") and st["spent_usd"] == 0.0
    h = await b.reserve(p, est(1.0))
    await h.release()
    clock.t -= 1  # the old day's counter is still there, untouched
    assert (await b.status("t"))["spent_usd"] == 1.0


async def test_week_and_total_periods(backend: Backend) -> None:
    s = backend.settings([team("w", budget={"usd": 1.0, "period": "week"}),
                          team("a", budget={"usd": 1.0, "period": "total"})])
    clock = Clock()
    b = await backend.budgets(s, clock)
    for name in ("w", "a"):
        h = await b.reserve(principal(s, name), est(0.6))
        await h.settle(usd_to_micros(0.6))
    assert (await b.status("w"))["period_start"].startswith("2037-11-09")  # Monday
    clock.t += 86400  # Monday 16th: a new week, but no new total
    assert (await b.status("w"))["spent_usd"] == 0.0
    assert (await b.status("a"))["spent_usd"] == 0.6
    assert (await b.status("a"))["period_end"] is None


async def test_expired_hold_is_given_back_and_still_settles(backend: Backend) -> None:
    s = backend.settings([team(budget={"usd": 1.0})], budget_hold_ttl_s=30)
    clock = Clock()
    crashed, alive = await backend.budgets(s, clock), await backend.budgets(s, clock)
    p = principal(s)
    lost = await crashed.reserve(p, est(0.5))
    kept = await crashed.reserve(p, est(0.4))
    lost_id = lost.hold_id
    del lost  # nobody will settle it (and the replica stops renewing it)
    gc.collect()
    assert not crashed.is_live(lost_id)
    with pytest.raises(BudgetExceeded):
        await alive.reserve(p, est(0.2))
    clock.t += 31
    st = await alive.status("t")
    assert st["reserved_usd"] == 0.0  # both expired: their replica did not renew them in time
    await kept.settle(usd_to_micros(0.35))  # late settle: the spend counts, nothing goes negative
    st = await alive.status("t")
    assert (st["spent_usd"], st["reserved_usd"]) == (0.35, 0.0)


async def test_live_holds_are_renewed(backend: Backend) -> None:
    s = backend.settings([team(budget={"usd": 1.0})], budget_hold_ttl_s=0.6)
    clock = Clock()
    b = await backend.budgets(s, clock)
    h = await b.reserve(principal(s), est(0.5))
    for _ in range(4):  # well past the TTL in total, renewed every 0.2 s
        await asyncio.sleep(0.3)
        clock.t += 0.3
    assert (await b.status("t"))["reserved_usd"] == 0.5
    await h.release()


# --- scopes: key and team, USD and tokens, all or nothing -------------------------------------


def keyed_team(**team_kw: Any) -> dict[str, Any]:
    return team(keys=["sk-t-plain", {"key": "sk-t-alice", "name": "alice",
                                     "budget": {"usd": 0.10, "period": "day"},
                                     "limits": {"rpm": 2}}], **team_kw)


async def test_key_and_team_budgets_all_or_nothing(backend: Backend) -> None:
    s = backend.settings([keyed_team(budget={"usd": 0.50})])
    b = await backend.budgets(s, Clock())
    alice, plain = principal(s, key_name="alice"), principal(s)
    h = await b.reserve(alice, est(0.08))
    with pytest.raises(BudgetExceeded, match="Key 'cfg:alice'"):
        await b.reserve(alice, est(0.03))
    st = await b.status("t")
    assert st["reserved_usd"] == 0.08  # the refused key reservation left the team untouched
    assert st["keys"][0]["key"] == "cfg:alice" and st["keys"][0]["reserved_usd"] == 0.08
    big = await b.reserve(plain, est(0.41))
    with pytest.raises(BudgetExceeded, match="Team"):
        await b.reserve(alice, est(0.02))  # the key has room, the team has not
    st = await b.status("t")
    assert st["keys"][0]["reserved_usd"] == 0.08 and st["reserved_usd"] == 0.49
    await h.settle(usd_to_micros(0.05))
    await big.release()
    st = await b.status("t")
    assert st["spent_usd"] == 0.05 and st["keys"][0]["spent_usd"] == 0.05


async def test_token_budget(backend: Backend) -> None:
    s = backend.settings([team(budget={"tokens": 1000, "period": "month"})])
    b = await backend.budgets(s, Clock())
    p = principal(s)
    h = await b.reserve(p, est(0.0, 600))
    with pytest.raises(BudgetExceeded, match="token budget"):
        await b.reserve(p, est(0.0, 500))
    await h.settle(0, 300)
    h = await b.reserve(p, est(0.0, 700))
    st = await b.status("t")
    assert (st["spent_tokens"], st["reserved_tokens"], st["remaining_tokens"]) == (300, 700, 0)
    await h.release()


# --- rate limits ---------------------------------------------------------------------------------


async def test_rpm_across_replicas(backend: Backend) -> None:
    s = backend.settings([team(limits={"rpm": 5})])
    clock = Clock()
    replicas = [await backend.budgets(s, clock) for _ in range(3)]
    p = principal(s)

    async def one(i: int) -> RateLimited | None:
        try:
            h = await replicas[i % 3].reserve(p, est(0.0))
        except RateLimited as exc:
            return exc
        await h.settle(0, 10)
        return None

    results = await asyncio.gather(*(one(i) for i in range(20)))
    refused = [r for r in results if r is not None]
    assert len(refused) == 15
    assert all(11 < r.retry_after_s <= 12 for r in refused)
    assert refused[0].headers()["retry-after"] == "12"
    clock.t += 12  # one request's worth of the minute has refilled
    h = await replicas[0].reserve(p, est(0.0))
    assert h.headers()["x-ratelimit-limit-requests"] == "5"
    assert h.headers()["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(RateLimited):
        await replicas[1].reserve(p, est(0.0))


async def test_key_rpm_refusal_does_not_spend_team_rpm(backend: Backend) -> None:
    s = backend.settings([keyed_team(limits={"rpm": 5})])
    b = await backend.budgets(s, Clock())
    alice, plain = principal(s, key_name="alice"), principal(s)
    for _ in range(2):
        await (await b.reserve(alice, est(0.0))).release()
    with pytest.raises(RateLimited, match="key:cfg:alice"):
        await b.reserve(alice, est(0.0))
    for _ in range(3):
        await (await b.reserve(plain, est(0.0))).release()
    with pytest.raises(RateLimited, match="for team"):
        await b.reserve(plain, est(0.0))


async def test_tpm_settles_to_actual_tokens(backend: Backend) -> None:
    s = backend.settings([team(limits={"tpm": 1000})])
    b = await backend.budgets(s, Clock())
    p = principal(s)
    h1 = await b.reserve(p, est(0.0, 400))
    h2 = await b.reserve(p, est(0.0, 400))
    assert h2.headers()["x-ratelimit-remaining-tokens"] == "200"
    with pytest.raises(RateLimited):
        await b.reserve(p, est(0.0, 400))
    await h1.settle(0, 100)  # 300 tokens come back
    h3 = await b.reserve(p, est(0.0, 400))
    assert h3.headers()["x-ratelimit-remaining-tokens"] == "100"
    await h2.release()
    await h3.release()


# --- streams: top-ups --------------------------------------------------------------------------


async def test_top_up_until_the_budget_is_gone(backend: Backend) -> None:
    s = backend.settings([team(budget={"usd": 1.0})])
    b = await backend.budgets(s, Clock())
    p = principal(s)
    other = await b.reserve(p, est(0.5))
    h = await b.reserve(p, est(0.2))
    assert await h.top_up(usd_to_micros(0.1))
    assert h.amount >= usd_to_micros(0.3)
    assert await h.top_up(usd_to_micros(0.5) - h.amount)  # cover a running total of 0.5
    assert h.amount == usd_to_micros(0.5)
    assert not await h.top_up(1)
    # Refused because the budget is exhausted: counted, and nothing is left of it.
    assert b.metrics()["gateway_budget_top_up_refusals_total"] == 1
    assert (await b.status("t"))["remaining_usd"] == 0.0
    await h.settle(usd_to_micros(0.5))
    await other.release()
    st = await b.status("t")
    assert (st["spent_usd"], st["reserved_usd"]) == (0.5, 0.0)


# --- run-time changes -------------------------------------------------------------------------


async def test_patch_is_seen_by_every_replica(backend: Backend) -> None:
    s = backend.settings([keyed_team(budget={"usd": 1.0})])
    clock = Clock()
    a, b = await backend.budgets(s, clock), await backend.budgets(s, clock)
    p = principal(s)
    await (await b.reserve(p, est(0.5))).settle(usd_to_micros(0.5))
    body = await a.update("t", {"usd": 0.6, "rpm": 100})
    assert body["limit_usd"] == 0.6 and body["limits"]["rpm"] == 100
    with pytest.raises(BudgetExceeded):
        await b.reserve(p, est(0.2))  # b had the old config cached; the store's version wins
    h = await b.reserve(p, est(0.1))
    assert h.headers()["x-ratelimit-limit-requests"] == "100"
    await h.release()
    body = await b.update("t", {"key": "cfg:alice", "usd": 0.01, "period": "month"})
    assert body["keys"][0]["limit_usd"] == 0.01
    with pytest.raises(BudgetExceeded):
        await a.reserve(principal(s, key_name="alice"), est(0.02))
    body = await a.update("t", {"reset": True})
    assert body["limit_usd"] == 1.0 and body["limits"]["rpm"] is None
    for bad in ({"usd": -1}, {"period": "fortnight"}, {"colour": "red"}, {"rpm": 0}):
        with pytest.raises(InvalidRequest):
            await a.update("t", bad)


# --- alerts -------------------------------------------------------------------------------------


async def test_one_alert_per_threshold_per_period(backend: Backend) -> None:
    s = backend.settings([team(budget={"usd": 1.0, "alert_at": [0.5, 0.8, 1.0]})])
    clock = Clock()
    a, b = await backend.budgets(s, clock), await backend.budgets(s, clock)
    p = principal(s)
    for i in range(10):
        await (await (a, b)[i % 2].reserve(p, est(0.1))).settle(usd_to_micros(0.1))
    sent = [r.alert for r in list(a.alerts.records) + list(b.alerts.records)]
    assert sorted(x.threshold for x in sent) == [0.5, 0.8, 1.0]
    assert all(x.team == "t" and x.limit == 1.0 and x.period_id == "2037-11" for x in sent)
    assert next(x for x in sent if x.threshold == 0.5).spent == pytest.approx(0.5)


# --- store failures -------------------------------------------------------------------------------


async def test_frozen_store_fails_closed_or_degrades(backend: Backend) -> None:
    if backend.freeze is None:
        pytest.skip("the memory store cannot be frozen")
    s = backend.settings([team("strict", budget={"usd": 1.0}),
                          team("lenient", budget={"usd": 1.0}, on_store_error="allow")],
                         budget_timeout_s=0.2)
    b = await backend.budgets(s, Clock())
    lenient = principal(s, "lenient")
    h = await b.reserve(lenient, est(0.4))
    await h.settle(usd_to_micros(0.4))
    assert not h.degraded
    with backend.freeze():
        with pytest.raises(StoreUnavailable):
            await b.reserve(principal(s, "strict"), est(0.1))
        assert b.degraded and b.metrics()["gateway_budget_degraded"] == 1.0
        h = await b.reserve(lenient, est(0.3))
        assert h.degraded and h.headers()["x-gateway-degraded"] == "budget-store"
        with pytest.raises(BudgetExceeded):  # the local limiter starts from the last known 0.4
            await b.reserve(lenient, est(0.4))
        await h.settle(usd_to_micros(0.25))
        with pytest.raises(StoreUnavailable):
            await b.ping()
    for _ in range(50):  # the maintenance task probes, then reconciles
        await asyncio.sleep(0.1)
        if not b.degraded and not b.unsynced:
            break
    st = await b.status("lenient")
    assert st["spent_usd"] == pytest.approx(0.65) and st["reserved_usd"] == 0.0
    h = await b.reserve(principal(s, "strict"), est(0.1))
    assert not h.degraded
    await h.release()


async def test_redis_key_layout(backend: Backend, request: pytest.FixtureRequest) -> None:
    """Every key of a team carries its hash tag (one Cluster slot); period keys expire."""
    if backend.name != "redis":
        pytest.skip("Redis only")
    import redis.asyncio as aioredis

    s = backend.settings([keyed_team(budget={"usd": 1.0, "tokens": 100, "period": "day"},
                                     limits={"rpm": 5, "tpm": 1000})])
    b = await backend.budgets(s, Clock(T0 + 3600))
    h = await b.reserve(principal(s, key_name="alice"), est(0.01))
    await h.settle(usd_to_micros(0.01), 10)
    live = await b.reserve(principal(s), est(0.01))  # so that the hold keys exist
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"),
                                     decode_responses=True)
    try:
        keys = sorted([k async for k in client.scan_iter(match=f"{backend.prefix}:*")])
        assert keys and all(k.startswith(f"{backend.prefix}:{{t}}:") for k in keys)
        short = {k.removeprefix(f"{backend.prefix}:{{t}}:") for k in keys}
        assert {"b:team:usd:2037-11-15", "b:team:tok:2037-11-15", "r:team:req", "r:team:tok",
                "b:key:cfg:alice:usd:2037-11-15", "r:key:cfg:alice:req", "holds", "hexp",
                f"m:done:{h.hold_id}"} <= short
        ttl = await client.ttl(f"{backend.prefix}:{{t}}:b:team:usd:2037-11-15")
        assert ttl > 0  # the counter of a finished period goes away by itself
    finally:
        await client.aclose()
        await live.release()
