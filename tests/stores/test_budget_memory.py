"""The in-process budget store's own promises beyond the shared contract: a repeated settle
counts once, and what it remembers for that stays bounded however many requests pass."""

from __future__ import annotations

from gateway.stores.budget import BudgetLine, ReserveRequest, SettleRequest
from gateway.stores.budget_memory import MEMORY_DONE_MARK_TTL_US, MemoryBudgetStore

LINE = BudgetLine("b:team:usd:2026-12-03", "usd", 1_000_000_000, 10)


async def _reserve_settle(store: MemoryBudgetStore, hold_id: str, now_us: int) -> None:
    res = await store.reserve(ReserveRequest("t", hold_id, now_us, 60_000_000, 0, (LINE,), ()))
    assert res.outcome == "ok"
    await store.settle(SettleRequest("t", hold_id, now_us, 7, 0, (LINE,), ()))


async def test_a_repeated_settle_counts_once() -> None:
    store = MemoryBudgetStore()
    await _reserve_settle(store, "h1", 1_000_000)
    again = SettleRequest("t", "h1", 1_000_000 + MEMORY_DONE_MARK_TTL_US - 1, 7, 0, (LINE,), ())
    (counter,) = await store.settle(again)
    assert (counter.spent, counter.reserved) == (7, 0)


async def test_settled_hold_marks_stay_bounded() -> None:
    """10,000 requests a second for 12 seconds: only the last window's marks are kept (a
    minute's marks, as the shared stores keep, would be all 120,000)."""
    store = MemoryBudgetStore()
    per_second = 10_000
    window_s = MEMORY_DONE_MARK_TTL_US // 1_000_000
    for i in range(12 * per_second):
        await _reserve_settle(store, f"h{i}", 1_000_000 + i * 1_000_000 // per_second)
    assert len(store.state.marks) <= (window_s + 1) * per_second
    assert len(store.state.holds) == 0
    counter = store.state.counter(f"t/{LINE.key}")
    assert (counter.spent, counter.reserved) == (7 * 12 * per_second, 0)
