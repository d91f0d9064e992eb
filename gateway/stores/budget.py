"""The budget store seam: the few atomic operations every backend offers, and the values they take.

Stores fail closed: an operation that cannot reach its store raises ``StoreError``, and
``gateway.budget`` turns that into 503 ``store_unavailable`` unless the team chose
``on_store_error: allow``.

Everything a store knows is counters; which counters apply to a request (team and key, USD and
tokens, the period) is decided by ``gateway.budget``, which hands the store *lines*:

* a ``BudgetLine`` is a period counter (``spent`` and ``reserved``) with a limit, in integer
  micro-dollars (``usd``) or tokens (``tok``); its key carries the period id, so a new period
  starts at zero without a reset job;
* a ``RateLine`` is a per-minute limit kept as a GCRA "theoretical arrival time" in microseconds
  (a token bucket of ``limit`` units refilled at ``limit``/60 per second): at most ``limit`` in a
  burst, never more than ``limit`` over a minute on average, and one integer per scope.

``reserve`` checks every line and changes none unless all fit (all or nothing). A hold remembers
what it reserved and expires after a TTL unless renewed, so a crashed replica cannot pin a budget.
``settle`` adds the actual cost to ``spent`` even when the hold already expired, and is
idempotent per hold id (a done-marker), so a retried settle never counts twice.

The memory and SQLite stores run the rules of ``budget_rules`` on a ``State``; the Redis store
runs the same rules in Lua. One contract suite (tests/stores/test_budget_contract.py) holds all
three to the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Metric = Literal["usd", "tok", "req"]
WINDOW_US = 60_000_000  # rate limits are per minute
UNLIMITED = -1  # a budget line that only counts (status, alerts) and never refuses
# How long a settled hold id is remembered, so that a settle applied twice counts once. The
# gateway never retries a settle later than its store timeout, so a minute is ample; a longer
# memory costs a mark per request (at 1,000 requests/s an hour of marks is ~1 GB of memory).
DONE_MARK_TTL_US = 60_000_000
# A reconciliation batch may be resent on a later probe, so its marks live longer (they are few).
SYNC_MARK_TTL_US = 3_600_000_000


class StoreError(Exception):
    """The store did not answer or answered nonsense; callers fail closed on it."""


@dataclass(frozen=True, slots=True)
class BudgetLine:
    key: str
    metric: Metric
    limit: int  # UNLIMITED or >= 0
    amount: int  # what this hold reserves (or adds, in a top-up)
    expire_at_s: int = 0  # when the period counter may be forgotten; 0 = never


@dataclass(frozen=True, slots=True)
class RateLine:
    key: str
    metric: Metric
    limit: int  # per minute, >= 1
    amount: int


@dataclass(frozen=True, slots=True)
class ReserveRequest:
    team: str
    hold_id: str
    now_us: int
    ttl_us: int
    cfg_version: int
    budgets: tuple[BudgetLine, ...]
    rates: tuple[RateLine, ...]


@dataclass(frozen=True, slots=True)
class ReserveResult:
    outcome: Literal["ok", "budget", "rate", "stale"]
    index: int = -1  # the refusing line, for "budget" and "rate"
    retry_after_us: int = 0
    used: tuple[int, ...] = ()  # spent + reserved per budget line, after the operation
    rate_remaining: tuple[int, ...] = ()
    cfg_version: int = 0


@dataclass(frozen=True, slots=True)
class SettleRequest:
    team: str
    hold_id: str
    now_us: int
    actual_usd: int
    actual_tok: int
    budgets: tuple[BudgetLine, ...]  # amount = what the hold holds now
    rates: tuple[RateLine, ...]


@dataclass(frozen=True, slots=True)
class Counter:
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """What the store keeps about an open hold, enough to undo it when it expires."""

    team: str
    hold_id: str
    expires_us: int
    budgets: tuple[tuple[str, int], ...] = field(default=())  # (key, amount reserved)


class BudgetStore(Protocol):
    """The operations of one backend; each is atomic across every line it is given."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def reserve(self, req: ReserveRequest) -> ReserveResult: ...
    async def settle(self, req: SettleRequest) -> tuple[Counter, ...]: ...
    async def top_up(self, req: ReserveRequest) -> ReserveResult: ...
    async def renew(self, team: str, hold_ids: list[str], now_us: int, ttl_us: int) -> None: ...
    async def usage(self, team: str, keys: list[str], rates: list[RateLine],
                    now_us: int) -> tuple[list[Counter], list[int]]: ...
    async def add_spent(self, team: str, batch_id: str, entries: list[tuple[str, int, int]],
                        now_us: int) -> None: ...
    async def claim(self, team: str, marker: str, expire_at_s: int) -> bool: ...
    async def get_config(self, team: str) -> tuple[int, dict[str, str]]: ...
    async def set_config(self, team: str, scope: str, value: str | None) -> int: ...
