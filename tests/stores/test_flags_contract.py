"""The review-queue part of the LogStore contract, run against SQLite and a fresh PostgreSQL.

Flagged records enter the queue through ``write_records`` (the background writer's path), in the
same transaction as the request log; everything else goes through the store's queue methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.records import FindingEntry, RequestRecord, RuleEntry
from gateway.stores.backends import open_log_store
from gateway.stores.logs import FlagQuery, LogStore, RequestQuery, RuleStat, Verdict
from gateway.stores.sql.flags import flag_id

BASE = 1_699_920_000.0
DAY = 86400.0


def flagged(request_id: str, created_at: float = BASE, *, team: str = "search",
            model: str = "gpt-test", rules: list[RuleEntry] | None = None,
            **fields: Any) -> RequestRecord:
    rules = rules if rules is not None else [rule("emails", "pii")]
    return RequestRecord(request_id=request_id, created_at=created_at, endpoint="chat",
                         team=team, key_id="cfg:k1", model=model, flagged=True, rules=rules,
                         review_prompt="mail <EMAIL_ADDRESS> now",
                         review_response="ok", **fields)


def rule(name: str, check: str, action: str = "flag") -> RuleEntry:
    return RuleEntry(name, check, action, "", False, (FindingEntry("EMAIL_ADDRESS", 0.9, 5, 20),))


def verdict(v: str, at: float = BASE + 10, note: str = "") -> Verdict:
    return Verdict(verdict=v, note=note, reviewer="cfg:rev", at=at)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/logs/gateway.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[LogStore]:
    s = open_log_store(store_url)
    await s.open()
    yield s
    await s.close()


async def ids(store: LogStore, query: FlagQuery) -> list[str]:
    """Follow the cursor to the end; every page but the last is full."""
    out: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.list_flags(replace(query, cursor=cursor))
        out += [i["request_id"] for i in page.items]
        if page.next_cursor is None:
            return out
        assert len(page.items) == query.limit
        cursor = page.next_cursor


async def test_flagged_record_becomes_an_open_item(store: LogStore) -> None:
    r = flagged("req-1", rules=[rule("emails", "pii", "redact"), rule("hosts", "regex")])
    await store.write_records([r, RequestRecord("req-2", BASE, "chat", team="search")])
    page = await store.list_flags(FlagQuery())
    assert page.next_cursor is None
    assert page.items == [{
        "id": flag_id("req-1"), "request_id": "req-1", "team": "search", "key_id": "cfg:k1",
        "model": "gpt-test", "created_at": BASE, "status": "open",
        "rules": [e.public() for e in r.rules],
        "prompt": "mail <EMAIL_ADDRESS> now", "response": "ok", "reviewed_at": None,
        "reviews": [],
    }]
    assert await store.get_flag(flag_id("req-1")) == page.items[0]
    assert await store.get_flag("flg_nope") is None
    # The request itself is logged too, in the same batch.
    assert len((await store.query_requests(RequestQuery())).items) == 2


async def test_rewriting_a_batch_adds_nothing(store: LogStore) -> None:
    batch = [flagged("a"), flagged("b", BASE + 1)]
    await store.write_records(batch)
    await store.write_records(batch)
    assert await ids(store, FlagQuery()) == ["b", "a"]
    assert (await store.rule_stats(None))[0].open == 2


async def test_filters_and_pagination(store: LogStore) -> None:
    await store.write_records([
        flagged("s1", BASE + 1, rules=[rule("emails", "pii")]),
        flagged("s2", BASE + 2, rules=[rule("hosts", "regex")], model="mock"),
        flagged("s3", BASE + 2.5, rules=[rule("emails", "pii"), rule("hosts", "regex")]),
        flagged("o1", BASE + 3, team="other"),
        flagged("s4", BASE + DAY, rules=[rule("keys", "secrets", "block")]),
    ])
    assert await ids(store, FlagQuery(limit=2)) == ["s4", "o1", "s3", "s2", "s1"]
    assert await ids(store, FlagQuery(team="search", limit=1)) == ["s4", "s3", "s2", "s1"]
    assert await ids(store, FlagQuery(check="regex")) == ["s3", "s2"]
    assert await ids(store, FlagQuery(rule="emails", team="search")) == ["s3", "s1"]
    assert await ids(store, FlagQuery(model="mock")) == ["s2"]
    assert await ids(store, FlagQuery(since=BASE + 2, until=BASE + 3)) == ["s3", "s2"]
    await store.review_flag(flag_id("s3"), verdict("confirmed"))
    assert await ids(store, FlagQuery(status="confirmed")) == ["s3"]
    assert await ids(store, FlagQuery(status="open", check="regex")) == ["s2"]
    counts = await store.count_flags(FlagQuery(team="search", status="open"))
    assert counts == {"open": 3, "confirmed": 1, "dismissed": 0}


async def test_cursor_is_stable_while_items_arrive(store: LogStore) -> None:
    await store.write_records([flagged(f"r{i}", BASE + i) for i in range(5)])
    first = await store.list_flags(FlagQuery(limit=2))
    await store.write_records([flagged("late", BASE + 100)])
    second = await store.list_flags(FlagQuery(limit=2, cursor=first.next_cursor))
    assert [i["request_id"] for i in second.items] == ["r2", "r1"]
    with pytest.raises(ValueError):
        await store.list_flags(FlagQuery(cursor="%%%"))


async def test_verdict_history_and_status(store: LogStore) -> None:
    await store.write_records([flagged("x")])
    fid = flag_id("x")
    assert await store.review_flag(fid, verdict("dismissed", BASE + 10, "looks fine"))
    assert await store.review_flag(fid, verdict("confirmed", BASE + 20, "no: a real address"))
    assert not await store.review_flag("flg_unknown", verdict("confirmed"))
    item = await store.get_flag(fid)
    assert item is not None
    assert item["status"] == "confirmed" and item["reviewed_at"] == BASE + 20
    assert item["reviews"] == [
        {"verdict": "dismissed", "note": "looks fine", "reviewer": "cfg:rev", "at": BASE + 10},
        {"verdict": "confirmed", "note": "no: a real address", "reviewer": "cfg:rev",
         "at": BASE + 20},
    ]
    listed = (await store.list_flags(FlagQuery())).items[0]
    assert listed["reviews"] == item["reviews"]


async def test_rule_stats_count_items_by_current_status(store: LogStore) -> None:
    await store.write_records([
        flagged("a", rules=[rule("emails", "pii"), rule("emails", "pii")]),  # fired twice
        flagged("b", rules=[rule("emails", "pii"), rule("hosts", "regex")]),
        flagged("c", rules=[rule("hosts", "regex")]),
        flagged("d", team="other", rules=[rule("hosts", "regex")]),
    ])
    await store.review_flag(flag_id("a"), verdict("confirmed"))
    await store.review_flag(flag_id("b"), verdict("dismissed"))
    await store.review_flag(flag_id("c"), verdict("dismissed"))
    stats = await store.rule_stats(None)
    assert stats == [RuleStat("hosts", "regex", 0, 2, 1), RuleStat("emails", "pii", 1, 1, 0)]
    assert stats[1].precision == 0.5 and stats[0].precision == 0.0
    assert await store.rule_stats("other") == [RuleStat("hosts", "regex", 0, 0, 1)]
    assert (await store.rule_stats("other"))[0].precision is None
    assert await store.rule_stats(None, since=BASE + 1) == []


async def test_rule_stats_judge_only_the_rules_that_queued_the_item(store: LogStore) -> None:
    """Issue 13, item 7: a mask or redact rule that fired on a queued item did not queue it,
    so a verdict on the item says nothing about it (its precision fell to 0 %)."""
    await store.write_records([
        flagged("a", rules=[rule("pii-in", "pii", "mask"), rule("hosts", "regex", "flag")]),
        flagged("b", rules=[rule("pii-in", "pii", "mask"), rule("secrets", "secrets", "block"),
                            rule("pii-out", "pii", "redact")]),
    ])
    await store.review_flag(flag_id("a"), verdict("dismissed"))
    await store.review_flag(flag_id("b"), verdict("confirmed"))
    stats = await store.rule_stats(None)
    assert sorted(stats, key=lambda s: s.rule) == [RuleStat("hosts", "regex", 0, 1, 0),
                                                   RuleStat("secrets", "secrets", 1, 0, 0)]
    # The item still lists every rule that fired, and can be found by any of them.
    item = await store.get_flag(flag_id("a"))
    assert item is not None and [r["action"] for r in item["rules"]] == ["mask", "flag"]
    assert sorted(await ids(store, FlagQuery(rule="pii-in"))) == ["a", "b"]


async def test_purges_are_bounded_and_keep_open_items(store: LogStore) -> None:
    await store.write_records([RequestRecord(f"old{i}", BASE + i, "chat") for i in range(5)]
                              + [RequestRecord("new", BASE + DAY, "chat")]
                              + [flagged("f-open"), flagged("f-old"), flagged("f-recent")])
    assert await store.purge_requests(BASE + 100, limit=3) == 3
    assert await store.purge_requests(BASE + 100, limit=3) == 3  # old0..4 and the f-* requests
    assert await store.purge_requests(BASE + 100, limit=3) == 2
    assert await store.purge_requests(BASE + 100, limit=3) == 0
    left = (await store.query_requests(RequestQuery())).items
    assert [r["request_id"] for r in left] == ["new"]

    await store.review_flag(flag_id("f-old"), verdict("dismissed", BASE + 10))
    await store.review_flag(flag_id("f-recent"), verdict("confirmed", BASE + 5 * DAY))
    assert await store.purge_reviewed_flags(BASE + DAY, limit=10) == 1
    assert await store.purge_reviewed_flags(BASE + DAY, limit=10) == 0
    assert sorted(await ids(store, FlagQuery())) == ["f-open", "f-recent"]
    assert await store.get_flag(flag_id("f-old")) is None
    # Its rule rows went too: the statistics only count what is left.
    assert await store.rule_stats(None) == [RuleStat("emails", "pii", 1, 0, 1)]
