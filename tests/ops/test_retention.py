"""Retention: expired request records and reviewed items go, in bounded batches; open items stay."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.ops.retention import DAY_S, Retention
from gateway.records import RequestRecord
from gateway.settings import RetentionSettings
from gateway.stores.logs import FlagQuery, LogStore, RequestQuery, Verdict
from gateway.stores.logs_sqlite import SqliteLogStore
from gateway.stores.sql.flags import flag_id
from tests.flagdata import flagged, submit
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, base_config

NOW = 1_700_000_000.0


class CountingStore(SqliteLogStore):
    """A real store that remembers the size of every purge batch it was asked for."""

    batches: list[int]

    async def purge_requests(self, before: float, limit: int) -> int:
        n = await super().purge_requests(before, limit)
        self.batches.append(n)
        return n


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    s = CountingStore(f"sqlite:///{tmp_path}/gw.db")
    s.batches = []
    await s.open()
    yield s
    await s.close()


async def request_ids(store: LogStore) -> list[str]:
    return [r["request_id"] for r in (await store.query_requests(RequestQuery(limit=1000))).items]


async def test_pass_deletes_expired_rows_in_batches(store: CountingStore) -> None:
    old = [RequestRecord(f"old{i}", NOW - 40 * DAY_S + i, "chat") for i in range(7)]
    await store.write_records([*old, RequestRecord("fresh", NOW - 29 * DAY_S, "chat"),
                               flagged("f-reviewed", NOW - 100 * DAY_S),
                               flagged("f-open", NOW - 100 * DAY_S),
                               flagged("f-recent", NOW - 100 * DAY_S)])
    await store.review_flag(flag_id("f-reviewed"), Verdict("dismissed", "", "r", NOW - 61 * DAY_S))
    await store.review_flag(flag_id("f-recent"), Verdict("confirmed", "", "r", NOW - 59 * DAY_S))

    retention = Retention(store, RetentionSettings(requests_days=30, reviewed_days=60,
                                                   batch_size=3), clock=lambda: NOW)
    result = await retention.run_once()
    assert (result.requests, result.flags) == (10, 1)
    assert store.batches == [3, 3, 3, 1]  # never more than batch_size rows per statement
    assert await request_ids(store) == ["fresh"]
    left = (await store.list_flags(FlagQuery())).items
    assert sorted(i["request_id"] for i in left) == ["f-open", "f-recent"]
    assert (await retention.run_once()).requests == 0


async def test_none_keeps_everything(store: CountingStore) -> None:
    await store.write_records([RequestRecord("ancient", 1.0, "chat")])
    retention = Retention(store, RetentionSettings(requests_days=None, reviewed_days=None))
    assert not retention.enabled
    retention.start()  # a no-op when nothing expires
    await retention.stop()
    assert (await retention.run_once()).requests == 0
    assert await request_ids(store) == ["ancient"]


async def test_background_loop_survives_a_failing_pass(
        store: CountingStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = SqliteLogStore(f"sqlite:///{tmp_path}/never-opened.db")  # every call raises
    retention = Retention(broken, RetentionSettings(interval_s=0.05), first_delay_s=0)
    with caplog.at_level(logging.WARNING, "gateway.ops.retention"):
        retention.start()
        await asyncio.sleep(0.2)
        await retention.stop()
    assert retention.passes == 0
    assert len([r for r in caplog.records if "retention pass failed" in r.message]) >= 2

    await store.write_records([RequestRecord("old", time.time() - 2 * DAY_S, "chat")])
    working = Retention(store, RetentionSettings(requests_days=1, interval_s=0.05),
                        first_delay_s=0)
    working.start()
    for _ in range(100):
        if working.passes:
            break
        await asyncio.sleep(0.02)
    await working.stop()
    assert await request_ids(store) == []


def test_gateway_runs_retention_from_its_config(tmp_path: Path) -> None:
    cfg = base_config("http://127.0.0.1:9/v1", tmp_path,
                      retention={"requests_days": 1, "interval_s": 0.1})
    with run_gateway(cfg) as gw:
        submit(gw, RequestRecord("old", time.time() - 3 * DAY_S, "chat", team="search"),
               RequestRecord("new", time.time(), "chat", team="search"))
        deadline = time.monotonic() + 10
        while True:
            items = httpx.get(gw.url + "/admin/requests",
                              headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()["items"]
            if [i["request_id"] for i in items] == ["new"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [i["request_id"] for i in items] == ["new"]
