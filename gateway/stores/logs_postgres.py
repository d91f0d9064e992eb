"""The PostgreSQL log store, for durable logs shared by several gateway replicas (asyncpg pool).

Every replica runs the idempotent schema on start. ``CREATE TABLE IF NOT EXISTS`` alone is not
safe when two sessions run it at the same moment (the loser fails on a catalog unique index), so
the DDL runs in one transaction behind a transaction-scoped advisory lock: replicas take turns,
and the lock goes away with the transaction even if a replica dies half way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

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
from gateway.stores.sql.common import POSTGRES, numbered

#: Advisory lock id guarding schema creation ("gwlogs01" as a big-endian int64).
SCHEMA_LOCK_ID = int.from_bytes(b"gwlogs01", "big")

_INSERT_REQUEST = numbered(sql.INSERT_REQUEST)
_INSERT_KEY = numbered(sql.INSERT_KEY)
_FIND_KEY = numbered(sql.FIND_KEY)
_REVOKE_KEY = numbered(sql.REVOKE_KEY)
_INSERT_FLAG = numbered(fsql.INSERT_FLAG)
_INSERT_FLAG_RULE = numbered(fsql.INSERT_FLAG_RULE)
_GET_FLAG = numbered(fsql.GET_FLAG)
_SET_STATUS = numbered(fsql.SET_STATUS)
_INSERT_REVIEW = numbered(fsql.INSERT_REVIEW)
_PURGE_REQUESTS = numbered(fsql.PURGE_REQUESTS)
_EXPIRED_FLAGS = numbered(fsql.EXPIRED_FLAGS)


class PostgresLogStore:
    """``LogStore`` over PostgreSQL; ``url`` is a libpq URL (``postgresql://user@host:port/db``)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 command_timeout_s: float = 30.0) -> None:
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout_s = command_timeout_s
        self._pool: Any = None  # asyncpg.Pool; asyncpg ships no type information

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(self.url, min_size=self._min_size,
                                         max_size=self._max_size,
                                         command_timeout=self._command_timeout_s)
        try:
            await _create_schema(pool)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def _db(self) -> Any:
        if self._pool is None:
            raise RuntimeError("PostgresLogStore is not open")
        return self._pool

    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

    # --- requests --------------------------------------------------------------------------------

    async def write_records(self, records: Sequence[RequestRecord]) -> None:
        """One transaction per batch (flagged records join the review queue in it); duplicates
        of a stored request_id are ignored."""
        if not records:
            return
        params = [sql.record_params(r) for r in records]
        flagged = fsql.flag_rows(records)
        if not flagged.flags:
            await self._db.executemany(_INSERT_REQUEST, params)  # atomic by itself
            return
        async with self._db.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT_REQUEST, params)
            await conn.executemany(_INSERT_FLAG, flagged.flags)
            await conn.executemany(_INSERT_FLAG_RULE, flagged.rules)

    async def query_requests(self, query: RequestQuery) -> Page:
        """Newest first (created_at, then request_id, both descending); limit clamped to 1..1000;
        ``next_cursor`` is None on the last page. A malformed cursor raises ``ValueError``."""
        stmt = sql.requests_statement(query)
        rows = await self._db.fetch(numbered(stmt.sql), *stmt.params)
        return sql.page_from_rows(rows, query.limit)

    async def spend(self, query: SpendQuery) -> list[SpendRow]:
        """Sums per model alias / key id / UTC day / team over ``since <= created_at < until``;
        every record counts as a request. Largest cost first, then group name."""
        stmt = sql.spend_statement(query, POSTGRES)
        rows = await self._db.fetch(numbered(stmt.sql), *stmt.params)
        return sql.spend_rows(rows)

    # --- the review queue ------------------------------------------------------------------------

    async def list_flags(self, query: FlagQuery) -> Page:
        stmt = fsql.list_statement(query)
        async with self._db.acquire() as conn:
            page = fsql.page_of_flags(await conn.fetch(numbered(stmt.sql), *stmt.params),
                                      query.limit)
            await _attach_reviews(conn, page.items)
        return page

    async def count_flags(self, query: FlagQuery) -> dict[str, int]:
        stmt = fsql.counts_statement(query)
        return fsql.counts_from_rows(await self._db.fetch(numbered(stmt.sql), *stmt.params))

    async def get_flag(self, flag_id: str) -> dict[str, Any] | None:
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(_GET_FLAG, flag_id)
            if row is None:
                return None
            item = fsql.row_to_flag(row)
            await _attach_reviews(conn, [item])
        return item

    async def review_flag(self, flag_id: str, verdict: Verdict) -> bool:
        update, insert = fsql.review_params(flag_id, verdict)
        async with self._db.acquire() as conn, conn.transaction():
            if await conn.fetchrow(_SET_STATUS, *update) is None:
                return False
            await conn.execute(_INSERT_REVIEW, *insert)
        return True

    async def rule_stats(self, team: str | None, since: float | None = None,
                         until: float | None = None) -> list[RuleStat]:
        stmt = fsql.stats_statement(team, since, until)
        return fsql.stats_from_rows(await self._db.fetch(numbered(stmt.sql), *stmt.params))

    async def purge_requests(self, before: float, limit: int) -> int:
        status = await self._db.execute(_PURGE_REQUESTS, float(before), int(limit))
        return _affected(status)

    async def purge_reviewed_flags(self, before: float, limit: int) -> int:
        async with self._db.acquire() as conn, conn.transaction():
            ids = [r["id"] for r in await conn.fetch(_EXPIRED_FLAGS, float(before), int(limit))]
            for stmt in fsql.purge_flag_statements(ids) if ids else []:
                await conn.execute(numbered(stmt.sql), *stmt.params)
        return len(ids)

    # --- keys ------------------------------------------------------------------------------------

    async def create_key(self, key: StoredKey) -> None:
        """Raises ``asyncpg.UniqueViolationError`` on a duplicate id or key hash."""
        await self._db.execute(_INSERT_KEY, *sql.key_params(key))

    async def find_key(self, key_hash: str) -> StoredKey | None:
        row = await self._db.fetchrow(_FIND_KEY, key_hash)
        return None if row is None else sql.row_to_key(row)

    async def list_keys(self, team: str | None) -> list[StoredKey]:
        stmt = sql.list_keys_statement(team)
        rows = await self._db.fetch(numbered(stmt.sql), *stmt.params)
        return [sql.row_to_key(r) for r in rows]

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        """Revoking twice keeps the first ``revoked_at``; None for an unknown id."""
        row = await self._db.fetchrow(_REVOKE_KEY, float(at), key_id)
        return None if row is None else sql.row_to_key(row)


async def _create_schema(pool: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_ID)
        for ddl in sql.schema(POSTGRES) + fsql.schema(POSTGRES):
            await conn.execute(ddl)


async def _attach_reviews(conn: Any, items: list[dict[str, Any]]) -> None:
    if items:
        stmt = fsql.reviews_statement([i["id"] for i in items])
        fsql.attach_reviews(items, await conn.fetch(numbered(stmt.sql), *stmt.params))


def _affected(status: str) -> int:
    """asyncpg reports a command's row count only in its tag, e.g. ``DELETE 42``."""
    return int(status.rsplit(" ", 1)[-1])
