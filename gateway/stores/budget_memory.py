"""The in-process budget store (``memory://``): exact within one process, nothing shared.

It fails closed like the others, but it has nothing to fail: every operation runs synchronously
on the event loop between two awaits, which is what makes it atomic. Use it for one process (the
``make run`` default) and as the local limiter a replica falls back to when a team allows serving
while the shared store is away. Several workers or replicas need ``sqlite://`` or ``redis://``.
"""

from __future__ import annotations

import heapq

from gateway.stores import budget_rules as rules
from gateway.stores.budget import (
    Counter,
    HoldRecord,
    RateLine,
    ReserveRequest,
    ReserveResult,
    SettleRequest,
)

# How long the memory store remembers a settled hold. Its settles are synchronous calls in the
# same process that cannot fail, so ``gateway.budget`` never retries one: the mark only guards
# against a settle applied twice in a row. Every mark costs ~300 bytes for its lifetime, so the
# shared stores' minute (kept for their retries) would hold ~45 MB at 2,500 requests/s; five
# seconds holds ~4 MB and keeps a long run's memory flat after its first seconds.
MEMORY_DONE_MARK_TTL_US = 5_000_000


class MemoryState:
    """Dicts behind the ``State`` protocol; expired marks are swept as the map grows."""

    def __init__(self) -> None:
        self.counters: dict[str, Counter] = {}
        self.tats: dict[str, int] = {}
        self.holds: dict[tuple[str, str], HoldRecord] = {}
        self._next_expiry = 2**63  # no hold expires before this (a lower bound): skip the scan
        self.marks: dict[str, int] = {}
        self._mark_heap: list[tuple[int, str]] = []
        self.config: dict[str, dict[str, str]] = {}
        self.versions: dict[str, int] = {}

    def counter(self, key: str) -> Counter:
        return self.counters.get(key, Counter(0, 0))

    def add(self, key: str, spent: int, reserved: int, expire_at_s: int) -> Counter:
        c = self.counter(key)
        c = self.counters[key] = Counter(c.spent + spent, c.reserved + reserved)
        return c

    def tat(self, key: str) -> int | None:
        return self.tats.get(key)

    def set_tat(self, key: str, tat: int) -> None:
        self.tats[key] = tat

    def hold(self, team: str, hold_id: str) -> HoldRecord | None:
        return self.holds.get((team, hold_id))

    def put_hold(self, rec: HoldRecord) -> None:
        self.holds[(rec.team, rec.hold_id)] = rec
        self._next_expiry = min(self._next_expiry, rec.expires_us)

    def drop_hold(self, team: str, hold_id: str) -> None:
        self.holds.pop((team, hold_id), None)

    def expired_holds(self, team: str, now_us: int) -> list[HoldRecord]:
        """Called by every reserve: the scan runs only once some hold may have expired."""
        if now_us < self._next_expiry:
            return []
        expired = [h for (t, _), h in self.holds.items() if t == team and h.expires_us <= now_us]
        self._next_expiry = min((h.expires_us for h in self.holds.values() if h.team != team
                                 or h.expires_us > now_us), default=2**63)
        return expired

    def mark(self, name: str, expire_at_us: int, now_us: int) -> bool:
        while self._mark_heap and self._mark_heap[0][0] <= now_us:
            _, old = heapq.heappop(self._mark_heap)
            if self.marks.get(old, now_us + 1) <= now_us:
                del self.marks[old]
        if self.marks.get(name, 0) > now_us:
            return False
        self.marks[name] = expire_at_us
        heapq.heappush(self._mark_heap, (expire_at_us, name))
        return True

    def cfg_version(self, team: str) -> int:
        return self.versions.get(team, 0)


class MemoryBudgetStore:
    """``BudgetStore`` over ``MemoryState``."""

    def __init__(self) -> None:
        self.state = MemoryState()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def reserve(self, req: ReserveRequest) -> ReserveResult:
        return rules.reserve(self.state, req)

    async def settle(self, req: SettleRequest) -> tuple[Counter, ...]:
        return rules.settle(self.state, req, MEMORY_DONE_MARK_TTL_US)

    async def top_up(self, req: ReserveRequest) -> ReserveResult:
        return rules.top_up(self.state, req)

    async def renew(self, team: str, hold_ids: list[str], now_us: int, ttl_us: int) -> None:
        rules.renew(self.state, team, hold_ids, now_us, ttl_us)

    async def usage(self, team: str, keys: list[str], rates: list[RateLine],
                    now_us: int) -> tuple[list[Counter], list[int]]:
        return rules.usage(self.state, team, keys, rates, now_us)

    async def add_spent(self, team: str, batch_id: str, entries: list[tuple[str, int, int]],
                        now_us: int) -> None:
        rules.add_spent(self.state, team, batch_id, entries, now_us)

    async def claim(self, team: str, marker: str, expire_at_s: int) -> bool:
        far = expire_at_s * 1_000_000 if expire_at_s else 2**62
        return self.state.mark(f"claim:{team}:{marker}", far, 0)

    async def get_config(self, team: str) -> tuple[int, dict[str, str]]:
        return self.state.versions.get(team, 0), dict(self.state.config.get(team, {}))

    async def set_config(self, team: str, scope: str, value: str | None) -> int:
        cfg = self.state.config.setdefault(team, {})
        if value is None:
            cfg.pop(scope, None)
        else:
            cfg[scope] = value
        v = self.state.versions[team] = self.state.versions.get(team, 0) + 1
        return v
