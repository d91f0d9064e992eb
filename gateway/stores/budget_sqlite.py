"""The SQLite budget store (``sqlite:///path``): exact across the worker processes of one host.

It fails closed: a locked or missing database raises, and the caller refuses with 503 unless
the team allows degraded serving. Each operation is one ``BEGIN IMMEDIATE`` transaction, which
SQLite serialises across processes, running the shared rules of ``budget_rules`` on rows read
inside it. Calls run on one dedicated thread per process so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson

from gateway.stores import budget_rules as rules
from gateway.stores.budget import (
    Counter,
    HoldRecord,
    RateLine,
    ReserveRequest,
    ReserveResult,
    SettleRequest,
    StoreError,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_counters (
  k TEXT PRIMARY KEY, spent INTEGER NOT NULL, reserved INTEGER NOT NULL, expire_at INTEGER);
CREATE TABLE IF NOT EXISTS budget_rates (k TEXT PRIMARY KEY, tat INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS budget_holds (
  team TEXT NOT NULL, id TEXT NOT NULL, expires INTEGER NOT NULL, lines TEXT NOT NULL,
  PRIMARY KEY (team, id));
CREATE INDEX IF NOT EXISTS budget_holds_exp ON budget_holds (team, expires);
CREATE TABLE IF NOT EXISTS budget_marks (name TEXT PRIMARY KEY, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS budget_marks_exp ON budget_marks (expires);
CREATE TABLE IF NOT EXISTS budget_config (
  team TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (team, scope));
CREATE TABLE IF NOT EXISTS budget_config_version (team TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


class SqliteState:
    """Row access inside one open transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def counter(self, key: str) -> Counter:
        row = self.db.execute("SELECT spent, reserved FROM budget_counters WHERE k = ?",
                              (key,)).fetchone()
        return Counter(row[0], row[1]) if row else Counter(0, 0)

    def add(self, key: str, spent: int, reserved: int, expire_at_s: int) -> Counter:
        row = self.db.execute(
            "INSERT INTO budget_counters (k, spent, reserved, expire_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (k) DO UPDATE SET spent = spent + excluded.spent, "
            "reserved = reserved + excluded.reserved RETURNING spent, reserved",
            (key, spent, reserved, expire_at_s or None)).fetchone()
        return Counter(row[0], row[1])

    def tat(self, key: str) -> int | None:
        row = self.db.execute("SELECT tat FROM budget_rates WHERE k = ?", (key,)).fetchone()
        return int(row[0]) if row else None

    def set_tat(self, key: str, tat: int) -> None:
        self.db.execute("INSERT INTO budget_rates (k, tat) VALUES (?, ?) "
                        "ON CONFLICT (k) DO UPDATE SET tat = excluded.tat", (key, tat))

    def hold(self, team: str, hold_id: str) -> HoldRecord | None:
        row = self.db.execute("SELECT expires, lines FROM budget_holds WHERE team = ? AND id = ?",
                              (team, hold_id)).fetchone()
        return None if row is None else _record(team, hold_id, row[0], row[1])

    def put_hold(self, rec: HoldRecord) -> None:
        self.db.execute(
            "INSERT INTO budget_holds (team, id, expires, lines) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (team, id) DO UPDATE SET expires = excluded.expires, "
            "lines = excluded.lines",
            (rec.team, rec.hold_id, rec.expires_us, orjson.dumps(rec.budgets).decode()))

    def drop_hold(self, team: str, hold_id: str) -> None:
        self.db.execute("DELETE FROM budget_holds WHERE team = ? AND id = ?", (team, hold_id))

    def expired_holds(self, team: str, now_us: int) -> list[HoldRecord]:
        rows = self.db.execute("SELECT id, expires, lines FROM budget_holds "
                               "WHERE team = ? AND expires <= ?", (team, now_us)).fetchall()
        return [_record(team, r[0], r[1], r[2]) for r in rows]

    def mark(self, name: str, expire_at_us: int, now_us: int) -> bool:
        self.db.execute("DELETE FROM budget_marks WHERE expires <= ?", (now_us,))
        cur = self.db.execute("INSERT OR IGNORE INTO budget_marks (name, expires) VALUES (?, ?)",
                              (name, expire_at_us))
        return cur.rowcount == 1

    def cfg_version(self, team: str) -> int:
        row = self.db.execute("SELECT version FROM budget_config_version WHERE team = ?",
                              (team,)).fetchone()
        return int(row[0]) if row else 0


def _record(team: str, hold_id: str, expires: int, lines: str) -> HoldRecord:
    return HoldRecord(team, hold_id, expires, tuple((k, int(a)) for k, a in orjson.loads(lines)))


class SqliteBudgetStore:
    """``BudgetStore`` over one SQLite file shared by the processes of a host."""

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite://")
        self.path = path[1:] if path.startswith("/") else path
        self._db: sqlite3.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budget-sqlite")

    async def open(self) -> None:
        await self._run_raw(self._connect)

    def _connect(self) -> None:
        if self._db is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        # Counters of periods that ended long ago are dead weight; Redis expires them itself.
        db.execute("DELETE FROM budget_counters WHERE expire_at IS NOT NULL AND expire_at < ?",
                   (int(time.time()),))
        self._db = db

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, db.close)
        self._pool.shutdown(wait=False)

    async def _run_raw(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite budget store: {exc}") from exc

    async def _tx(self, fn: Callable[[SqliteState], T]) -> T:
        def run() -> T:
            if self._db is None:
                raise StoreError("sqlite budget store is closed")
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(SqliteState(db))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out
        return await self._run_raw(run)

    async def ping(self) -> None:
        await self._tx(lambda s: s.cfg_version(""))

    async def reserve(self, req: ReserveRequest) -> ReserveResult:
        return await self._tx(lambda s: rules.reserve(s, req))

    async def settle(self, req: SettleRequest) -> tuple[Counter, ...]:
        return await self._tx(lambda s: rules.settle(s, req))

    async def top_up(self, req: ReserveRequest) -> ReserveResult:
        return await self._tx(lambda s: rules.top_up(s, req))

    async def renew(self, team: str, hold_ids: list[str], now_us: int, ttl_us: int) -> None:
        await self._tx(lambda s: rules.renew(s, team, hold_ids, now_us, ttl_us))

    async def usage(self, team: str, keys: list[str], rates: list[RateLine],
                    now_us: int) -> tuple[list[Counter], list[int]]:
        return await self._tx(lambda s: rules.usage(s, team, keys, rates, now_us))

    async def add_spent(self, team: str, batch_id: str, entries: list[tuple[str, int, int]],
                        now_us: int) -> None:
        await self._tx(lambda s: rules.add_spent(s, team, batch_id, entries, now_us))

    async def claim(self, team: str, marker: str, expire_at_s: int) -> bool:
        far = expire_at_s * 1_000_000 if expire_at_s else 2**62
        return await self._tx(lambda s: s.mark(f"claim:{team}:{marker}", far, 0))

    async def get_config(self, team: str) -> tuple[int, dict[str, str]]:
        def read(s: SqliteState) -> tuple[int, dict[str, str]]:
            rows = s.db.execute("SELECT scope, value FROM budget_config WHERE team = ?",
                                (team,)).fetchall()
            return s.cfg_version(team), {r[0]: r[1] for r in rows}
        return await self._tx(read)

    async def set_config(self, team: str, scope: str, value: str | None) -> int:
        def write(s: SqliteState) -> int:
            if value is None:
                s.db.execute("DELETE FROM budget_config WHERE team = ? AND scope = ?",
                             (team, scope))
            else:
                s.db.execute("INSERT INTO budget_config (team, scope, value) VALUES (?, ?, ?) "
                             "ON CONFLICT (team, scope) DO UPDATE SET value = excluded.value",
                             (team, scope, value))
            v = s.cfg_version(team) + 1
            s.db.execute("INSERT INTO budget_config_version (team, version) VALUES (?, ?) "
                         "ON CONFLICT (team) DO UPDATE SET version = excluded.version", (team, v))
            return v
        return await self._tx(write)
