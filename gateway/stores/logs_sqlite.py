"""The embedded log store: one SQLite file, driven from one dedicated thread.

``sqlite3`` calls block, so every one of them runs on a single-thread executor and the event loop
only awaits futures. One thread also means one connection used strictly serially, which is all
SQLite wants. Several worker processes may open the same file: WAL lets readers run beside the
one writer, ``busy_timeout`` makes writers queue instead of failing, and the schema is created
with ``IF NOT EXISTS`` inside ``BEGIN IMMEDIATE`` so concurrent first opens serialise.

URLs: ``sqlite:///relative/path``, ``sqlite:////absolute/path``, ``sqlite://:memory:``.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.records import RequestRecord
from gateway.stores.logs import (
    FlagQuery,
    Page,
    RequestQuery,
    RuleStat,
    SpendQuery,
    SpendRow,
    StoredKey,
    Verdict,
)
from gateway.stores.sql import flags as fsql
from gateway.stores.sql import requests as sql
from gateway.stores.sql.common import SQLITE
from gateway.stores.sql.sqlite import MEMORY, dict_row, set_wal, sqlite_path, transaction

T = TypeVar("T")

# The largest multi-row INSERT: 256 rows (SQLite allows 32,766 bound parameters per statement
# since 3.32, 999 before). A batch goes in as chunks of power-of-two sizes (see ``_chunk_rows``).
_MAX_ROWS_PER_INSERT = min(256, (32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999)
                           // len(sql.REQUEST_COLUMNS))


def _chunk_rows(n: int) -> list[int]:
    """The chunk sizes for a batch of ``n`` rows: full chunks of the largest size, then the
    binary digits of the rest (100 = 64 + 32 + 4).

    Why not one INSERT of exactly ``n`` rows: every distinct SQL text is a prepared statement
    that sqlite3 caches per connection (128 of them), and a statement of a few hundred rows of
    ~30 columns weighs a few hundred KB. With batch sizes varying from batch to batch, the cache
    filled with a different statement per size: 30 MB of memory grew over the first minute
    of sustained load (bench/OPTIMISATIONS.md). Power-of-two chunks need at most nine
    statements, about 1 MB, for at most nine steps a batch."""
    full, rest = divmod(n, _MAX_ROWS_PER_INSERT)
    return [_MAX_ROWS_PER_INSERT] * full + [
        1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1]


@functools.lru_cache(maxsize=16)
def _insert_rows(n: int) -> str:
    """``INSERT ... VALUES (?, ...), (?, ...) ...`` for ``n`` request rows."""
    row = "(" + ", ".join("?" for _ in sql.REQUEST_COLUMNS) + ")"
    return (f"INSERT INTO requests ({', '.join(sql.REQUEST_COLUMNS)}) VALUES "
            + ", ".join([row] * n) + " ON CONFLICT (request_id) DO NOTHING")


class SqliteLogStore:
    """``LogStore`` over a SQLite file; see the module docstring for the threading model."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = sqlite_path(url)
        self._busy_timeout_ms = busy_timeout_ms
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the executor's thread

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-logs")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> None:
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000,
                               isolation_level=None)  # autocommit; transactions are explicit
        try:
            conn.row_factory = dict_row
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            with transaction(conn):
                for ddl in sql.schema(SQLITE) + fsql.schema(SQLITE):
                    conn.execute(ddl)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)  # the queue is empty; the thread exits by itself

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's thread."""
        if self._executor is None:
            raise RuntimeError("SqliteLogStore is not open")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._with_conn, fn)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("SqliteLogStore is closed")
        return fn(self._conn)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").close())

    # --- requests --------------------------------------------------------------------------------

    async def write_records(self, records: Sequence[RequestRecord]) -> None:
        """One transaction per batch (flagged records join the review queue in it); duplicates
        of a stored request_id are ignored."""
        if not records:
            return
        params = [value for r in records for value in sql.record_params(r)]
        flagged = fsql.flag_rows(records)

        def insert(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                # One multi-row INSERT per chunk, not executemany: sqlite3 lets go of the GIL
                # around every statement step, and a step per row made the writer thread and
                # the event loop trade the GIL hundreds of times a batch (bench/OPTIMISATIONS.md).
                per_row = len(sql.REQUEST_COLUMNS)
                start = 0
                for rows in _chunk_rows(len(records)):
                    end = start + rows * per_row
                    conn.execute(_insert_rows(rows), params[start:end])
                    start = end
                if flagged.flags:
                    conn.executemany(fsql.INSERT_FLAG, flagged.flags)
                    conn.executemany(fsql.INSERT_FLAG_RULE, flagged.rules)

        await self._run(insert)

    async def query_requests(self, query: RequestQuery) -> Page:
        """Newest first (created_at, then request_id, both descending); limit clamped to 1..1000;
        ``next_cursor`` is None on the last page. A malformed cursor raises ``ValueError``."""
        stmt = sql.requests_statement(query)
        rows = await self._run(lambda c: c.execute(stmt.sql, stmt.params).fetchall())
        return sql.page_from_rows(rows, query.limit)

    async def spend(self, query: SpendQuery) -> list[SpendRow]:
        """Sums per model alias / key id / UTC day / team over ``since <= created_at < until``;
        every record counts as a request. Largest cost first, then group name."""
        stmt = sql.spend_statement(query, SQLITE)
        rows = await self._run(lambda c: c.execute(stmt.sql, stmt.params).fetchall())
        return sql.spend_rows(rows)

    # --- the review queue ------------------------------------------------------------------------

    async def list_flags(self, query: FlagQuery) -> Page:
        stmt = fsql.list_statement(query)

        def run(conn: sqlite3.Connection) -> Page:
            page = fsql.page_of_flags(conn.execute(stmt.sql, stmt.params).fetchall(), query.limit)
            _attach_reviews(conn, page.items)
            return page

        return await self._run(run)

    async def count_flags(self, query: FlagQuery) -> dict[str, int]:
        stmt = fsql.counts_statement(query)
        rows = await self._run(lambda c: c.execute(stmt.sql, stmt.params).fetchall())
        return fsql.counts_from_rows(rows)

    async def get_flag(self, flag_id: str) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(fsql.GET_FLAG, (flag_id,)).fetchone()
            if row is None:
                return None
            item = fsql.row_to_flag(row)
            _attach_reviews(conn, [item])
            return item

        return await self._run(run)

    async def review_flag(self, flag_id: str, verdict: Verdict) -> bool:
        update, insert = fsql.review_params(flag_id, verdict)

        def run(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                if not conn.execute(fsql.SET_STATUS, update).fetchall():
                    return False
                conn.execute(fsql.INSERT_REVIEW, insert)
                return True

        return await self._run(run)

    async def rule_stats(self, team: str | None, since: float | None = None,
                         until: float | None = None) -> list[RuleStat]:
        stmt = fsql.stats_statement(team, since, until)
        rows = await self._run(lambda c: c.execute(stmt.sql, stmt.params).fetchall())
        return fsql.stats_from_rows(rows)

    async def purge_requests(self, before: float, limit: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                return conn.execute(fsql.PURGE_REQUESTS, (float(before), int(limit))).rowcount

        return await self._run(run)

    async def purge_reviewed_flags(self, before: float, limit: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                ids = [r["id"] for r in
                       conn.execute(fsql.EXPIRED_FLAGS, (float(before), int(limit))).fetchall()]
                if ids:
                    for stmt in fsql.purge_flag_statements(ids):
                        conn.execute(stmt.sql, stmt.params)
                return len(ids)

        return await self._run(run)

    # --- keys ------------------------------------------------------------------------------------

    async def create_key(self, key: StoredKey) -> None:
        """Raises ``sqlite3.IntegrityError`` on a duplicate id or key hash."""
        params = sql.key_params(key)
        await self._run(lambda c: c.execute(sql.INSERT_KEY, params).close())

    async def find_key(self, key_hash: str) -> StoredKey | None:
        row = await self._run(lambda c: c.execute(sql.FIND_KEY, (key_hash,)).fetchone())
        return None if row is None else sql.row_to_key(row)

    async def list_keys(self, team: str | None) -> list[StoredKey]:
        stmt = sql.list_keys_statement(team)
        rows = await self._run(lambda c: c.execute(stmt.sql, stmt.params).fetchall())
        return [sql.row_to_key(r) for r in rows]

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        """Revoking twice keeps the first ``revoked_at``; None for an unknown id."""
        # fetchall, not fetchone: the UPDATE's implicit transaction ends only once the statement
        # has run to completion.
        rows = await self._run(
            lambda c: c.execute(sql.REVOKE_KEY, (float(at), key_id)).fetchall())
        return sql.row_to_key(rows[0]) if rows else None


def _attach_reviews(conn: sqlite3.Connection, items: list[dict[str, Any]]) -> None:
    if items:
        stmt = fsql.reviews_statement([i["id"] for i in items])
        fsql.attach_reviews(items, conn.execute(stmt.sql, stmt.params).fetchall())
