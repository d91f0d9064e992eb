"""The budget rules on Python-accessible state: what the memory and SQLite stores run atomically.

Each function is one store operation applied to a ``State`` (rows read and written inside the
caller's transaction, or between two awaits for the memory store). The Redis store runs the same
rules in Lua; the contract suite holds the three to one behaviour.
"""

from __future__ import annotations

import math
from typing import Protocol

from gateway.stores.budget import (
    DONE_MARK_TTL_US,
    SYNC_MARK_TTL_US,
    UNLIMITED,
    WINDOW_US,
    Counter,
    HoldRecord,
    RateLine,
    ReserveRequest,
    ReserveResult,
    SettleRequest,
)


class State(Protocol):
    """Row access for one atomic operation; the caller provides the atomicity."""

    def counter(self, key: str) -> Counter: ...
    def add(self, key: str, spent: int, reserved: int, expire_at_s: int) -> Counter: ...
    def tat(self, key: str) -> int | None: ...
    def set_tat(self, key: str, tat: int) -> None: ...
    def hold(self, team: str, hold_id: str) -> HoldRecord | None: ...
    def put_hold(self, rec: HoldRecord) -> None: ...
    def drop_hold(self, team: str, hold_id: str) -> None: ...
    def expired_holds(self, team: str, now_us: int) -> list[HoldRecord]: ...
    def mark(self, name: str, expire_at_us: int, now_us: int) -> bool: ...
    def cfg_version(self, team: str) -> int: ...


def ns(team: str, key: str) -> str:
    """A counter's name in a store shared by every team (Redis namespaces by hash tag instead)."""
    return f"{team}/{key}"


def gcra_cost(amount: int, limit: int) -> int:
    """Microseconds of the minute window that ``amount`` units use up (same float rule as Lua)."""
    return math.ceil(amount * WINDOW_US / limit)


def gcra_remaining(tat: int | None, now_us: int, limit: int) -> int:
    if tat is None or tat <= now_us:
        return limit
    return max(0, min(limit, math.floor((now_us + WINDOW_US - tat) * limit / WINDOW_US)))


def purge(state: State, team: str, now_us: int) -> None:
    """Give back what expired holds reserved; their replica is gone or stopped renewing."""
    for rec in state.expired_holds(team, now_us):
        for key, amount in rec.budgets:
            state.add(key, 0, -amount, 0)
        state.drop_hold(team, rec.hold_id)


def _check(state: State, req: ReserveRequest) -> ReserveResult | None:
    for i, line in enumerate(req.budgets):
        c = state.counter(ns(req.team, line.key))
        if line.limit != UNLIMITED and c.spent + c.reserved + line.amount > line.limit:
            return ReserveResult("budget", index=i, used=(c.spent + c.reserved,))
    for i, r in enumerate(req.rates):
        tat = max(state.tat(ns(req.team, r.key)) or req.now_us, req.now_us)
        new = tat + gcra_cost(r.amount, r.limit)
        if new - req.now_us > WINDOW_US:
            return ReserveResult("rate", index=i, retry_after_us=new - req.now_us - WINDOW_US)
    return None


def _apply(state: State, req: ReserveRequest) -> ReserveResult:
    used = []
    for line in req.budgets:
        c = state.add(ns(req.team, line.key), 0, line.amount, line.expire_at_s)
        used.append(c.spent + c.reserved)
    remaining = []
    for r in req.rates:
        key = ns(req.team, r.key)
        tat = max(state.tat(key) or req.now_us, req.now_us) + gcra_cost(r.amount, r.limit)
        state.set_tat(key, tat)
        remaining.append(gcra_remaining(tat, req.now_us, r.limit))
    return ReserveResult("ok", used=tuple(used), rate_remaining=tuple(remaining),
                         cfg_version=req.cfg_version)


def reserve(state: State, req: ReserveRequest) -> ReserveResult:
    version = state.cfg_version(req.team)
    if version != req.cfg_version:
        return ReserveResult("stale", cfg_version=version)
    purge(state, req.team, req.now_us)
    refused = _check(state, req)
    if refused is not None:
        return refused
    result = _apply(state, req)
    state.put_hold(HoldRecord(req.team, req.hold_id, req.now_us + req.ttl_us,
                              tuple((ns(req.team, b.key), b.amount) for b in req.budgets)))
    return result


def top_up(state: State, req: ReserveRequest) -> ReserveResult:
    """Grow an open hold by the lines' amounts; rate lines are charged without a check."""
    purge(state, req.team, req.now_us)
    rec = state.hold(req.team, req.hold_id)
    if rec is None:
        return ReserveResult("stale")  # expired or settled: nothing left to grow
    refused = _check(state, ReserveRequest(req.team, req.hold_id, req.now_us, req.ttl_us,
                                           req.cfg_version, req.budgets, ()))
    if refused is not None:
        return refused
    result = _apply(state, req)
    held = dict(rec.budgets)
    for b in req.budgets:
        key = ns(req.team, b.key)
        held[key] = held.get(key, 0) + b.amount
    state.put_hold(HoldRecord(req.team, req.hold_id, req.now_us + req.ttl_us,
                              tuple(held.items())))
    return result


def settle(state: State, req: SettleRequest,
           mark_ttl_us: int = DONE_MARK_TTL_US) -> tuple[Counter, ...]:
    """Turn a hold into spend: release what it held (if still held), add the actual cost.

    ``mark_ttl_us`` is how long a second settle of the same hold is recognised: as long as a
    caller may retry it (see ``DONE_MARK_TTL_US``; the memory store's callers never retry)."""
    rec = state.hold(req.team, req.hold_id)
    first = state.mark(f"done:{req.team}:{req.hold_id}", req.now_us + mark_ttl_us, req.now_us)
    held = dict(rec.budgets) if rec is not None else {}
    out = []
    for line in req.budgets:
        actual = (req.actual_usd if line.metric == "usd" else req.actual_tok) if first else 0
        key = ns(req.team, line.key)
        out.append(state.add(key, actual, -held.get(key, 0), line.expire_at_s))
    if rec is not None:
        state.drop_hold(req.team, req.hold_id)
    if first:
        for r in req.rates:
            if r.metric == "tok" and req.actual_tok != r.amount:
                key = ns(req.team, r.key)
                tat = state.tat(key)
                if tat is not None:
                    delta = gcra_cost(abs(req.actual_tok - r.amount), r.limit)
                    state.set_tat(key, tat + delta if req.actual_tok > r.amount else tat - delta)
    return tuple(out)


def renew(state: State, team: str, hold_ids: list[str], now_us: int, ttl_us: int) -> None:
    for hid in hold_ids:
        rec = state.hold(team, hid)
        if rec is not None:
            state.put_hold(HoldRecord(team, hid, now_us + ttl_us, rec.budgets))


def usage(state: State, team: str, keys: list[str], rates: list[RateLine],
          now_us: int) -> tuple[list[Counter], list[int]]:
    purge(state, team, now_us)
    return ([state.counter(ns(team, k)) for k in keys],
            [gcra_remaining(state.tat(ns(team, r.key)), now_us, r.limit) for r in rates])


def add_spent(state: State, team: str, batch_id: str, entries: list[tuple[str, int, int]],
              now_us: int) -> None:
    """Reconcile spend served while the store was away; idempotent per batch id."""
    if state.mark(f"sync:{team}:{batch_id}", now_us + SYNC_MARK_TTL_US, now_us):
        for key, amount, expire_at_s in entries:
            state.add(ns(team, key), amount, 0, expire_at_s)
