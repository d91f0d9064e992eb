"""The operations store on SQLite: the same file as the request log, its own connection and thread.

Appending an audit row reads the chain's head and inserts the next row in one ``BEGIN IMMEDIATE``
transaction, so two processes can never fork the chain.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.stores.ops import AuditEntry, NewEntry, Seal, Switch
from gateway.stores.sql import ops as q
from gateway.stores.sql.sqlite import MEMORY, sqlite_path, transaction

T = TypeVar("T")


class SqliteOpsStore:
    """One connection on one dedicated thread, like ``SqliteLogStore`` (same file, WAL)."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = sqlite_path(url)
        self._busy_timeout_ms = busy_timeout_ms
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-ops")
            await self._run(lambda c: None, connect=True)

    def _connect(self) -> sqlite3.Connection:
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000,
                               isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        with transaction(conn):
            for ddl in q.SCHEMA:
                conn.execute(ddl)
        return conn

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T], connect: bool = False) -> T:
        if self._executor is None:
            raise RuntimeError("SqliteOpsStore is not open")

        def call() -> T:
            if connect and self._conn is None:
                self._conn = self._connect()
            if self._conn is None:
                raise RuntimeError("SqliteOpsStore is closed")
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def append_audit(self, entry: NewEntry, seal: Seal) -> AuditEntry:
        def run(conn: sqlite3.Connection) -> AuditEntry:
            with transaction(conn):
                row = conn.execute(q.HEAD).fetchone()
                sealed = q.sealed(entry, (int(row["seq"]), row["hash"]) if row else None, seal)
                conn.execute(q.INSERT, q.params(sealed))
            return sealed

        return await self._run(run)

    async def audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = await self._run(lambda c: c.execute(q.PAGE, (after_seq, limit)).fetchall())
        return [q.entry(r) for r in rows]

    async def audit_recent(self, before_seq: int | None, limit: int,
                           action: str | None) -> list[AuditEntry]:
        sql, params = q.recent_sql(before_seq, action)
        rows = await self._run(lambda c: c.execute(sql, (*params, limit)).fetchall())
        return [q.entry(r) for r in rows]

    async def set_switch(self, switch: Switch) -> None:
        params = (switch.kind, switch.name, switch.reason, switch.actor, switch.created_at)
        await self._run(lambda c: c.execute(q.UPSERT_SWITCH, params).close())

    async def delete_switch(self, kind: str, name: str) -> bool:
        return await self._run(lambda c: c.execute(q.DELETE_SWITCH, (kind, name)).rowcount > 0)

    async def switches(self) -> list[Switch]:
        rows = await self._run(lambda c: c.execute(q.SWITCHES).fetchall())
        return [q.switch_of(r) for r in rows]
