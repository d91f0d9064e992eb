"""The LogStore contract, run against every backend (SQLite file, fresh PostgreSQL database).

A backend is correct when this whole module passes for it; backend-specific tests (URL forms,
several processes on one SQLite file) and the RecordWriter over a real store come at the end.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.records import FindingEntry, RecordWriter, RequestRecord, RuleEntry
from gateway.stores.backends import open_log_store
from gateway.stores.logs import (
    LogStore,
    RequestQuery,
    SpendQuery,
    SpendRow,
    StoredKey,
)
from gateway.stores.logs_sqlite import SqliteLogStore
from gateway.stores.sql.sqlite import sqlite_path

DAY = 86400.0
BASE = 1_699_920_000.0  # 2023-11-14 00:00:00 UTC


def rec(request_id: str, created_at: float = BASE, **fields: Any) -> RequestRecord:
    return RequestRecord(request_id=request_id, created_at=created_at, endpoint="chat", **fields)


async def all_items(store: LogStore, query: RequestQuery) -> list[dict[str, Any]]:
    """Follow next_cursor to the end, checking that every page but the last is full."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await store.query_requests(replace(query, cursor=cursor))
        items += page.items
        if page.next_cursor is None:
            return items
        assert len(page.items) == query.limit
        cursor = page.next_cursor


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/logs/gateway.db"  # tmp_path is absolute: four slashes
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[LogStore]:
    s = open_log_store(store_url)
    await s.open()
    yield s
    await s.close()


# --- requests ------------------------------------------------------------------------------------


async def test_every_field_round_trips(store: LogStore) -> None:
    full = rec("req-full", BASE + 0.123456, team="search", key_id="key_1", model="gpt-4o-mini",
               upstream_model="gpt-4o-mini-2024-07-18", provider="openai", stream=True,
               prompt_tokens=1234, completion_tokens=567, cost_micros=9_876_543_210,
               usage_estimated=True, latency_ms=812.25, ttft_ms=95.5, upstream_ms=790.125,
               status=200, finish_reason="stop", flagged=True,
               rules=[RuleEntry("input.0", "pii", "mask", "input", False,
                                (FindingEntry("EMAIL_ADDRESS", 0.95, 3, 20),))])
    bare = rec("req-bare", BASE, status=401, error_code="invalid_api_key")
    await store.write_records([full, bare])

    page = await store.query_requests(RequestQuery())
    assert page.items == [full.as_row(), bare.as_row()]
    assert page.next_cursor is None


async def test_duplicate_request_id_is_ignored(store: LogStore) -> None:
    first = rec("dup", team="a", cost_micros=1)
    await store.write_records([first])
    await store.write_records([rec("dup", team="b", cost_micros=2), rec("other"),
                               rec("other", team="c")])

    items = (await store.query_requests(RequestQuery())).items
    assert sorted(i["request_id"] for i in items) == ["dup", "other"]
    assert next(i for i in items if i["request_id"] == "dup") == first.as_row()


async def test_empty_batch_is_a_no_op(store: LogStore) -> None:
    await store.write_records([])
    assert (await store.query_requests(RequestQuery())).items == []


async def test_batches_of_any_size_are_stored_whole(store: LogStore) -> None:
    """Sizes around the SQLite store's power-of-two INSERT chunks (1..256 rows each)."""
    sizes = [1, 2, 3, 7, 100, 255, 256, 257, 600]
    for n, size in enumerate(sizes):
        await store.write_records([rec(f"b{n}-{i}", BASE + n * 1000 + i) for i in range(size)])
    stored: list[str] = []
    cursor = None
    while True:
        page = await store.query_requests(RequestQuery(limit=1000, cursor=cursor))
        stored += [str(i["request_id"]) for i in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(stored) == sorted(f"b{n}-{i}" for n, size in enumerate(sizes)
                                    for i in range(size))


async def test_pages_newest_first_with_ties(store: LogStore) -> None:
    times = {"r3": 100.0, "r0": 100.0, "r6": 100.0, "r1": 101.5, "r5": 101.5, "r2": 99.0,
             "r4": 99.0}
    await store.write_records([rec(rid, BASE + t) for rid, t in times.items()])
    expected = sorted(times, key=lambda rid: (times[rid], rid), reverse=True)

    for limit in (1, 2, 3, 7, 50):
        items = await all_items(store, RequestQuery(limit=limit))
        assert [i["request_id"] for i in items] == expected, limit


async def test_last_full_page_has_no_cursor(store: LogStore) -> None:
    await store.write_records([rec(f"r{i}", BASE + i) for i in range(6)])
    first = await store.query_requests(RequestQuery(limit=3))
    assert first.next_cursor is not None
    second = await store.query_requests(RequestQuery(limit=3, cursor=first.next_cursor))
    assert [i["request_id"] for i in second.items] == ["r2", "r1", "r0"]
    assert second.next_cursor is None


async def test_cursor_is_stable_while_new_records_arrive(store: LogStore) -> None:
    await store.write_records([rec(f"r{i}", BASE + i) for i in range(4)])
    first = await store.query_requests(RequestQuery(limit=2))
    await store.write_records([rec("newer", BASE + 100)])
    second = await store.query_requests(RequestQuery(limit=2, cursor=first.next_cursor))
    assert [i["request_id"] for i in second.items] == ["r1", "r0"]


async def test_limit_is_clamped(store: LogStore) -> None:
    await store.write_records([rec(f"r{i:04d}", BASE + i) for i in range(1005)])
    assert len((await store.query_requests(RequestQuery(limit=0))).items) == 1
    assert len((await store.query_requests(RequestQuery(limit=-5))).items) == 1
    page = await store.query_requests(RequestQuery(limit=5000))
    assert len(page.items) == 1000
    assert page.next_cursor is not None


async def test_malformed_cursor_is_a_value_error(store: LogStore) -> None:
    with pytest.raises(ValueError):
        await store.query_requests(RequestQuery(cursor="not a cursor!"))


async def test_filters_by_team_and_flag(store: LogStore) -> None:
    await store.write_records([
        rec(f"{team}-{i}", BASE + i, team=team, flagged=i % 2 == 0)
        for team in ("a", "b") for i in range(5)
    ] + [rec("anonymous", BASE, status=401)])

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [i["request_id"] for i in items]

    assert ids(await all_items(store, RequestQuery(team="a", limit=2))) == [
        "a-4", "a-3", "a-2", "a-1", "a-0"]
    assert ids(await all_items(store, RequestQuery(team="b", flagged=True, limit=2))) == [
        "b-4", "b-2", "b-0"]
    unflagged = await all_items(store, RequestQuery(flagged=False, limit=3))
    assert ids(unflagged) == ["b-3", "a-3", "b-1", "a-1", "anonymous"]
    assert (await store.query_requests(RequestQuery(team="nobody"))).items == []


# --- spend ---------------------------------------------------------------------------------------

SPEND_RECORDS = [
    rec("a", BASE + 10, team="search", key_id="k1", model="gpt", prompt_tokens=10,
        completion_tokens=5, cost_micros=100),
    rec("b", BASE + DAY - 0.5, team="search", key_id="k2", model="gpt", prompt_tokens=20,
        completion_tokens=10, cost_micros=300),
    rec("c", BASE + DAY, team="search", key_id="k1", model="claude", prompt_tokens=1,
        completion_tokens=1, cost_micros=50),
    rec("d", BASE + DAY + 100, team="ads", key_id="k3", model="gpt", prompt_tokens=3,
        completion_tokens=4, cost_micros=1000),
    rec("e", BASE + 5, model="gpt", status=401, error_code="invalid_api_key"),
    rec("f", BASE + 2 * DAY + 1, team="ads", key_id="k3", model="claude", status=500),
    rec("g", BASE + DAY + 200, team="ads", key_id="k4", model="mistral", prompt_tokens=2,
        completion_tokens=2, cost_micros=50),
]

SPEND_CASES: list[tuple[SpendQuery, list[SpendRow]]] = [
    (SpendQuery(group_by="model"), [
        SpendRow("gpt", 4, 33, 19, 1400), SpendRow("claude", 2, 1, 1, 50),
        SpendRow("mistral", 1, 2, 2, 50)]),  # equal cost: by group name
    (SpendQuery(group_by="key"), [
        SpendRow("k3", 2, 3, 4, 1000), SpendRow("k2", 1, 20, 10, 300),
        SpendRow("k1", 2, 11, 6, 150), SpendRow("k4", 1, 2, 2, 50), SpendRow("", 1, 0, 0, 0)]),
    (SpendQuery(group_by="day"), [
        SpendRow("2023-11-15", 3, 6, 7, 1100), SpendRow("2023-11-14", 3, 30, 15, 400),
        SpendRow("2023-11-16", 1, 0, 0, 0)]),
    (SpendQuery(group_by="team"), [
        SpendRow("ads", 3, 5, 6, 1050), SpendRow("search", 3, 31, 16, 450),
        SpendRow("", 1, 0, 0, 0)]),
    (SpendQuery(group_by="model", team="search"), [
        SpendRow("gpt", 2, 30, 15, 400), SpendRow("claude", 1, 1, 1, 50)]),
    # since is inclusive (c at exactly BASE + DAY), until exclusive (f at BASE + 2 DAY + 1).
    (SpendQuery(group_by="day", since=BASE + DAY, until=BASE + 2 * DAY + 1), [
        SpendRow("2023-11-15", 3, 6, 7, 1100)]),
    (SpendQuery(group_by="key", team="ads", since=BASE + DAY + 150), [
        SpendRow("k4", 1, 2, 2, 50), SpendRow("k3", 1, 0, 0, 0)]),
    (SpendQuery(group_by="team", until=BASE), []),
]


@pytest.mark.parametrize(("query", "expected"), SPEND_CASES,
                         ids=[f"{q.group_by}-{i}" for i, (q, _) in enumerate(SPEND_CASES)])
async def test_spend(store: LogStore, query: SpendQuery, expected: list[SpendRow]) -> None:
    await store.write_records(SPEND_RECORDS)
    assert await store.spend(query) == expected


# --- keys ----------------------------------------------------------------------------------------


def key(key_id: str, team: str, created_at: float) -> StoredKey:
    return StoredKey(id=key_id, team=team, name=f"name of {key_id}", key_hash=f"hash-{key_id}",
                     created_at=created_at)


async def test_keys_create_find_list(store: LogStore) -> None:
    keys = [key("k1", "a", BASE), key("k2", "b", BASE + 1), key("k3", "a", BASE + 2)]
    for k in keys:
        await store.create_key(k)

    assert await store.find_key("hash-k2") == keys[1]
    assert await store.find_key("unknown") is None
    assert await store.list_keys(None) == [keys[2], keys[1], keys[0]]
    assert await store.list_keys("a") == [keys[2], keys[0]]
    assert await store.list_keys("nobody") == []


async def test_duplicate_key_hash_is_refused(store: LogStore) -> None:
    await store.create_key(key("k1", "a", BASE))
    with pytest.raises(Exception, match=r"(?i)unique"):
        await store.create_key(replace(key("k2", "a", BASE), key_hash="hash-k1"))


async def test_revoke_keeps_the_first_time(store: LogStore) -> None:
    k = key("k1", "a", BASE)
    await store.create_key(k)

    assert await store.revoke_key("k1", BASE + 10) == replace(k, revoked_at=BASE + 10)
    assert await store.revoke_key("k1", BASE + 20) == replace(k, revoked_at=BASE + 10)
    assert await store.find_key("hash-k1") == replace(k, revoked_at=BASE + 10)
    assert await store.revoke_key("unknown", BASE) is None


# --- lifecycle -----------------------------------------------------------------------------------


async def test_ping(store: LogStore) -> None:
    await store.ping()


async def test_reopen_keeps_data(store_url: str) -> None:
    first = open_log_store(store_url)
    await first.open()
    await first.write_records([rec("kept")])
    await first.create_key(key("k1", "a", BASE))
    await first.close()

    again = open_log_store(store_url)
    await again.open()  # the schema exists already: must be a no-op
    try:
        assert [i["request_id"] for i in (await again.query_requests(RequestQuery())).items] == [
            "kept"]
        assert await again.find_key("hash-k1") == key("k1", "a", BASE)
    finally:
        await again.close()


async def test_closed_store_raises(store_url: str) -> None:
    s = open_log_store(store_url)
    await s.open()
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(RuntimeError):
        await s.ping()


async def test_stores_opened_concurrently_share_the_data(store_url: str) -> None:
    """Replicas (or worker processes) start together: schema creation must not race."""
    stores = [open_log_store(store_url) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await asyncio.gather(*(
            s.write_records([rec(f"s{n}-{i}", BASE + i) for i in range(50)])
            for n, s in enumerate(stores)))
        for s in stores:
            assert len(await all_items(s, RequestQuery(limit=1000))) == 200
    finally:
        await asyncio.gather(*(s.close() for s in stores))


# --- SQLite specifics ----------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///./data/gateway.db", "./data/gateway.db"),
    ("sqlite:///relative/x.db", "relative/x.db"),
    ("sqlite:////abs/x.db", "/abs/x.db"),
    ("sqlite://:memory:", ":memory:"),
    ("sqlite:///:memory:", ":memory:"),
])
def test_sqlite_url_forms(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "postgresql://x/y"])
def test_sqlite_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        sqlite_path(url)


async def test_sqlite_relative_path_creates_directories(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = SqliteLogStore("sqlite:///nested/dir/logs.db")
    await s.open()
    await s.close()
    assert (tmp_path / "nested" / "dir" / "logs.db").is_file()


async def test_sqlite_in_memory() -> None:
    s = SqliteLogStore("sqlite://:memory:")
    await s.open()
    try:
        await s.write_records([rec("m")])
        assert len((await s.query_requests(RequestQuery())).items) == 1
    finally:
        await s.close()


def _write_from_process(url: str, worker: int, count: int) -> None:
    """Runs in a child process: what a second uvicorn worker does with the same file."""
    async def main() -> None:
        s = SqliteLogStore(url)
        await s.open()
        try:
            for i in range(count):
                await s.write_records([rec(f"p{worker}-{i}", BASE + i)])
        finally:
            await s.close()

    asyncio.run(main())


async def test_sqlite_several_processes_on_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=3,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, _write_from_process, url, w, 40)
                               for w in range(3)))
    s = SqliteLogStore(url)
    await s.open()
    try:
        assert len(await all_items(s, RequestQuery(limit=1000))) == 120
    finally:
        await s.close()


# --- RecordWriter over a real store --------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteLogStore]:
    s = SqliteLogStore(f"sqlite:///{tmp_path}/writer.db")
    await s.open()
    yield s
    await s.close()


def counting(write: Callable[[Sequence[RequestRecord]], Awaitable[None]],
             sizes: list[int], fail_first: int = 0,
             ) -> Callable[[Sequence[RequestRecord]], Awaitable[None]]:
    """Wrap a real store's write: note each batch size, and fail the first ``fail_first`` calls
    the way a briefly unreachable database does."""
    async def write_batch(batch: Sequence[RequestRecord]) -> None:
        sizes.append(len(batch))
        if len(sizes) <= fail_first:
            raise ConnectionError("store unreachable")
        await write(batch)
    return write_batch


async def stored_count(store: LogStore) -> int:
    return sum(row.requests for row in await store.spend(SpendQuery(group_by="team")))


async def test_writer_batches_into_the_store(sqlite_store: SqliteLogStore) -> None:
    sizes: list[int] = []
    writer = RecordWriter(counting(sqlite_store.write_records, sizes), batch_size=500)
    for i in range(1200):  # queued before the task starts, so batches are full
        writer.submit(rec(f"r{i}", BASE + i))
    writer.start()
    await writer.flush()
    await writer.close()

    assert sizes == [500, 500, 200]
    assert (writer.written, writer.dropped) == (1200, 0)
    assert await stored_count(sqlite_store) == 1200


async def test_writer_close_drains_the_queue(sqlite_store: SqliteLogStore) -> None:
    writer = RecordWriter(sqlite_store.write_records)
    writer.start()
    for i in range(10):
        writer.submit(rec(f"r{i}"))
    await writer.close()
    assert await stored_count(sqlite_store) == 10


async def test_writer_retries_a_failing_store(sqlite_store: SqliteLogStore) -> None:
    sizes: list[int] = []
    writer = RecordWriter(counting(sqlite_store.write_records, sizes, fail_first=2),
                          max_retries=3)
    for i in range(5):
        writer.submit(rec(f"r{i}"))
    writer.start()
    await writer.close()

    assert sizes == [5, 5, 5]
    assert (writer.written, writer.dropped) == (5, 0)
    assert await stored_count(sqlite_store) == 5


async def test_writer_drops_and_counts_after_retries(sqlite_store: SqliteLogStore) -> None:
    # A real store failure: the table disappears under the open store.
    await asyncio.to_thread(_drop_requests_table, sqlite_store.path)
    sizes: list[int] = []
    drops: list[int] = []
    writer = RecordWriter(counting(sqlite_store.write_records, sizes), max_retries=2,
                          on_drop=drops.append)
    for i in range(4):
        writer.submit(rec(f"r{i}"))
    writer.start()
    await writer.close()

    assert sizes == [4, 4, 4]  # the first try and two retries
    assert (writer.written, writer.dropped) == (0, 4)
    assert drops == [4]


def _drop_requests_table(path: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TABLE requests")
        conn.commit()
    finally:
        conn.close()


async def test_writer_drops_when_the_queue_is_full(sqlite_store: SqliteLogStore) -> None:
    writer = RecordWriter(sqlite_store.write_records, max_queue=2)
    for i in range(3):
        writer.submit(rec(f"r{i}"))
    assert writer.dropped == 1
    writer.start()
    await writer.close()
    assert await stored_count(sqlite_store) == 2
