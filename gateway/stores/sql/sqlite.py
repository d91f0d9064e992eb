"""SQLite connections as the SQLite stores use them: the file of a URL, transactions, WAL, rows."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MEMORY = ":memory:"


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite://`` URL: three slashes relative, four absolute."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite://"):].split("?", 1)[0]
    path = rest[1:] if rest.startswith("/") else rest
    if not path:
        raise ValueError(f"sqlite URL without a path: {url!r}")
    return path


def dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` takes the write lock up front, so a busy database waits (up to
    busy_timeout) at the start instead of failing half way through the transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def set_wal(conn: sqlite3.Connection, attempts: int = 50) -> None:
    """Switching to WAL needs an exclusive lock and can report "locked" while another process
    does the same switch on a fresh file, so it is retried briefly (we are on the db thread)."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
