"""The operations store on PostgreSQL: a small asyncpg pool of its own beside the log store's.

Appending an audit row reads the chain's head and inserts the next row in one transaction behind
a transaction-scoped advisory lock, so two replicas can never fork the chain.
"""

from __future__ import annotations

from typing import Any

from gateway.stores.ops import AuditEntry, NewEntry, Seal, Switch
from gateway.stores.sql import ops as q
from gateway.stores.sql.common import numbered


class PostgresOpsStore:
    """A small asyncpg pool of its own (the log store's pool stays the log store's)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        import asyncpg

        pool = await asyncpg.create_pool(self.url, min_size=1, max_size=3, command_timeout=30)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", q.LOCK_ID)
                for ddl in q.SCHEMA:
                    await conn.execute(ddl)
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
            raise RuntimeError("PostgresOpsStore is not open")
        return self._pool

    async def append_audit(self, entry: NewEntry, seal: Seal) -> AuditEntry:
        async with self._db.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", q.LOCK_ID)
            row = await conn.fetchrow(q.HEAD)
            sealed = q.sealed(entry, (int(row["seq"]), row["hash"]) if row else None, seal)
            await conn.execute(numbered(q.INSERT), *q.params(sealed))
        return sealed

    async def audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = await self._db.fetch(numbered(q.PAGE), after_seq, limit)
        return [q.entry(r) for r in rows]

    async def audit_recent(self, before_seq: int | None, limit: int,
                           action: str | None) -> list[AuditEntry]:
        sql, params = q.recent_sql(before_seq, action)
        rows = await self._db.fetch(numbered(sql), *params, limit)
        return [q.entry(r) for r in rows]

    async def set_switch(self, switch: Switch) -> None:
        await self._db.execute(numbered(q.UPSERT_SWITCH), switch.kind, switch.name,
                               switch.reason, switch.actor, switch.created_at)

    async def delete_switch(self, kind: str, name: str) -> bool:
        status = await self._db.execute(numbered(q.DELETE_SWITCH), kind, name)
        return str(status).rsplit(" ", 1)[-1] != "0"

    async def switches(self) -> list[Switch]:
        return [q.switch_of(r) for r in await self._db.fetch(q.SWITCHES)]
