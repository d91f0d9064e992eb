"""The operations store: the append-only audit log and the kill switches, beside the request log.

It lives in the same database as the request log (``stores.logs``) but in its own tables and on
its own connection, so operations state survives restarts and every replica sees the same
switches. Appending an audit row reads the chain's head and inserts the next row in one
serialised transaction (SQLite ``BEGIN IMMEDIATE``; a transaction-scoped advisory lock on
PostgreSQL), so two replicas can never fork the chain. The row's hash is computed by the caller's
``seal`` function inside that transaction: the store knows nothing about the hashing scheme.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

from gateway.stores.logs_sqlite import MEMORY, sqlite_path

T = TypeVar("T")

GENESIS = "0" * 64
#: Advisory lock id serialising audit appends and schema creation ("gwops001").
LOCK_ID = int.from_bytes(b"gwops001", "big")

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq BIGINT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kill_switches (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (kind, name)
    )""",
]
_AUDIT_COLUMNS = "seq, at, actor, action, target, details, prev_hash, hash"
_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log. ``details`` is canonical JSON text, exactly as hashed."""

    seq: int
    at: float
    actor: str
    action: str
    target: str
    details: str
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """The fields the hash covers (everything but the hashes themselves)."""
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "target": self.target, "details": self.details}

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "target": self.target, "details": orjson.loads(self.details),
                "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class Switch:
    kind: str  # model | team
    name: str
    reason: str
    actor: str
    created_at: float

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason,
                "actor": self.actor, "created_at": self.created_at}


#: ``seal(prev_hash, content) -> hash``; see ``gateway.audit.seal``.
Seal = Callable[[str, dict[str, Any]], str]


@dataclass(frozen=True, slots=True)
class NewEntry:
    at: float
    actor: str
    action: str
    target: str
    details: str


class OpsStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def append_audit(self, entry: NewEntry, seal: Seal) -> AuditEntry:
        """Append after the current head, atomically with reading it."""

    async def audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        """Rows with ``seq > after_seq``, oldest first (for verification)."""

    async def audit_recent(self, before_seq: int | None, limit: int,
                           action: str | None) -> list[AuditEntry]:
        """Newest first, optionally below ``before_seq`` and of one action."""

    async def set_switch(self, switch: Switch) -> None: ...
    async def delete_switch(self, kind: str, name: str) -> bool: ...
    async def switches(self) -> list[Switch]: ...


def open_ops_store(url: str) -> OpsStore:
    if url.startswith("sqlite://"):
        return SqliteOpsStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresOpsStore(url)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(int(row["seq"]), float(row["at"]), row["actor"], row["action"],
                      row["target"], row["details"], row["prev_hash"], row["hash"])


def _switch(row: Any) -> Switch:
    return Switch(row["kind"], row["name"], row["reason"], row["actor"],
                  float(row["created_at"]))


def _recent_sql(before_seq: int | None, action: str | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    if action is not None:
        where.append("action = ?")
        params.append(action)
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT {_AUDIT_COLUMNS} FROM audit_log{cond} ORDER BY seq DESC LIMIT ?",
            [*params])


def _numbered(sql: str) -> str:
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{p}" for n, p in enumerate(parts[1:], start=1))


_INSERT = f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_PAGE = f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
_UPSERT_SWITCH = ("INSERT INTO kill_switches (kind, name, reason, actor, created_at) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET "
                  "reason = excluded.reason, actor = excluded.actor, "
                  "created_at = excluded.created_at")
_DELETE_SWITCH = "DELETE FROM kill_switches WHERE kind = ? AND name = ?"
_SWITCHES = "SELECT kind, name, reason, actor, created_at FROM kill_switches ORDER BY kind, name"


def _sealed(entry: NewEntry, head: tuple[int, str] | None, seal: Seal) -> AuditEntry:
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    draft = AuditEntry(seq, entry.at, entry.actor, entry.action, entry.target, entry.details,
                       prev, "")
    return AuditEntry(**{**_as_dict(draft), "hash": seal(prev, draft.content())})


def _as_dict(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
            "details": e.details, "prev_hash": e.prev_hash, "hash": e.hash}


def _params(e: AuditEntry) -> tuple[Any, ...]:
    return (e.seq, e.at, e.actor, e.action, e.target, e.details, e.prev_hash, e.hash)


# --- SQLite --------------------------------------------------------------------------------------


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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
        with _immediate(conn):
            for ddl in SCHEMA:
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
            with _immediate(conn):
                row = conn.execute(_HEAD).fetchone()
                sealed = _sealed(entry, (int(row["seq"]), row["hash"]) if row else None, seal)
                conn.execute(_INSERT, _params(sealed))
            return sealed

        return await self._run(run)

    async def audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = await self._run(lambda c: c.execute(_PAGE, (after_seq, limit)).fetchall())
        return [_entry(r) for r in rows]

    async def audit_recent(self, before_seq: int | None, limit: int,
                           action: str | None) -> list[AuditEntry]:
        sql, params = _recent_sql(before_seq, action)
        rows = await self._run(lambda c: c.execute(sql, (*params, limit)).fetchall())
        return [_entry(r) for r in rows]

    async def set_switch(self, switch: Switch) -> None:
        params = (switch.kind, switch.name, switch.reason, switch.actor, switch.created_at)
        await self._run(lambda c: c.execute(_UPSERT_SWITCH, params).close())

    async def delete_switch(self, kind: str, name: str) -> bool:
        return await self._run(lambda c: c.execute(_DELETE_SWITCH, (kind, name)).rowcount > 0)

    async def switches(self) -> list[Switch]:
        rows = await self._run(lambda c: c.execute(_SWITCHES).fetchall())
        return [_switch(r) for r in rows]


# --- PostgreSQL ----------------------------------------------------------------------------------


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
                await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
                for ddl in SCHEMA:
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
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
            row = await conn.fetchrow(_HEAD)
            sealed = _sealed(entry, (int(row["seq"]), row["hash"]) if row else None, seal)
            await conn.execute(_numbered(_INSERT), *_params(sealed))
        return sealed

    async def audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = await self._db.fetch(_numbered(_PAGE), after_seq, limit)
        return [_entry(r) for r in rows]

    async def audit_recent(self, before_seq: int | None, limit: int,
                           action: str | None) -> list[AuditEntry]:
        sql, params = _recent_sql(before_seq, action)
        rows = await self._db.fetch(_numbered(sql), *params, limit)
        return [_entry(r) for r in rows]

    async def set_switch(self, switch: Switch) -> None:
        await self._db.execute(_numbered(_UPSERT_SWITCH), switch.kind, switch.name,
                               switch.reason, switch.actor, switch.created_at)

    async def delete_switch(self, kind: str, name: str) -> bool:
        status = await self._db.execute(_numbered(_DELETE_SWITCH), kind, name)
        return str(status).rsplit(" ", 1)[-1] != "0"

    async def switches(self) -> list[Switch]:
        return [_switch(r) for r in await self._db.fetch(_SWITCHES)]
