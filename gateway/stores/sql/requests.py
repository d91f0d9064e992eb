"""The request log's SQL, shared by the SQLite and PostgreSQL log stores: requests, spend, keys.

Schema, statements with ``?`` placeholders (see ``common``) and row conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.records import RequestRecord
from gateway.stores.logs import GroupBy, Page, RequestQuery, SpendQuery, SpendRow, StoredKey
from gateway.stores.sql.common import (
    Dialect,
    Statement,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    where,
)

#: Columns of ``requests``, in ``RequestRecord.as_row()`` order.
REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id", "created_at", "endpoint", "team", "key_id", "model", "upstream_model",
    "provider", "stream", "prompt_tokens", "completion_tokens", "cost_micros", "usage_estimated",
    "latency_ms", "ttft_ms", "upstream_ms", "status", "error_code", "finish_reason", "flagged",
    "rules",
)
_BOOL_COLUMNS = ("stream", "usage_estimated", "flagged")
KEY_COLUMNS: tuple[str, ...] = ("id", "team", "name", "key_hash", "created_at", "revoked_at")

def schema(dialect: Dialect) -> list[str]:
    """Idempotent DDL statements (``IF NOT EXISTS`` everywhere), run in order."""
    return [
        f"""CREATE TABLE IF NOT EXISTS requests (
            request_id TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL,
            endpoint TEXT NOT NULL,
            team TEXT,
            key_id TEXT,
            model TEXT,
            upstream_model TEXT,
            provider TEXT,
            stream BOOLEAN NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            cost_micros BIGINT NOT NULL,
            usage_estimated BOOLEAN NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            ttft_ms DOUBLE PRECISION,
            upstream_ms DOUBLE PRECISION,
            status INTEGER NOT NULL,
            error_code TEXT,
            finish_reason TEXT,
            flagged BOOLEAN NOT NULL,
            rules {dialect.json_type} NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS requests_team_created ON requests (team, created_at)",
        "CREATE INDEX IF NOT EXISTS requests_created ON requests (created_at)",
        """CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY,
            team TEXT NOT NULL,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE INDEX IF NOT EXISTS api_keys_team_created ON api_keys (team, created_at)",
    ]


# --- requests ------------------------------------------------------------------------------------

INSERT_REQUEST = (
    f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in REQUEST_COLUMNS)}) "
    "ON CONFLICT (request_id) DO NOTHING"
)


def record_params(record: RequestRecord) -> tuple[Any, ...]:
    """Bind values for ``INSERT_REQUEST``: the ``as_row()`` values, rules as JSON text.

    Numbers are coerced to the column's Python type because asyncpg refuses, say, an int for a
    DOUBLE PRECISION parameter only sometimes, and a float for a BIGINT always.
    """
    row = record.as_row()
    row["created_at"] = float(row["created_at"])
    row["latency_ms"] = float(row["latency_ms"])
    for name in ("prompt_tokens", "completion_tokens", "cost_micros", "status"):
        row[name] = int(row[name])
    for name in _BOOL_COLUMNS:
        row[name] = bool(row[name])
    row["rules"] = orjson.dumps(row["rules"]).decode()
    return tuple(row[c] for c in REQUEST_COLUMNS)


def row_to_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row back in ``RequestRecord.as_row()`` shape (SQLite hands back 0/1 for bools)."""
    out = {c: row[c] for c in REQUEST_COLUMNS}
    for name in _BOOL_COLUMNS:
        out[name] = bool(out[name])
    out["created_at"] = float(out["created_at"])
    out["latency_ms"] = float(out["latency_ms"])
    out["ttft_ms"] = _opt_float(out["ttft_ms"])
    out["upstream_ms"] = _opt_float(out["upstream_ms"])
    rules = out["rules"]
    out["rules"] = orjson.loads(rules) if isinstance(rules, str | bytes) else rules
    return out


def requests_statement(query: RequestQuery) -> Statement:
    """Newest first, ties on ``created_at`` broken by ``request_id`` descending.

    One row more than the page is fetched so ``page_from_rows`` knows whether a next page exists
    without a second query. The cursor is keyset pagination, so pages stay stable while new
    records arrive.
    """
    conditions: list[str] = []
    params: list[Any] = []
    if query.team is not None:
        conditions.append("team = ?")
        params.append(query.team)
    if query.flagged is not None:
        conditions.append("flagged = ?")
        params.append(bool(query.flagged))
    if query.cursor:
        created_at, request_id = decode_cursor(query.cursor)
        conditions.append("(created_at, request_id) < (?, ?)")
        params += [created_at, request_id]
    sql = (f"SELECT {', '.join(REQUEST_COLUMNS)} FROM requests{where(conditions)} "
           "ORDER BY created_at DESC, request_id DESC LIMIT ?")
    params.append(clamp_limit(query.limit) + 1)
    return Statement(sql, tuple(params))


def page_from_rows(rows: Sequence[Mapping[str, Any]], limit: int) -> Page:
    """Cut the extra row fetched by ``requests_statement`` and turn it into ``next_cursor``."""
    limit = clamp_limit(limit)
    items = [row_to_dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    cursor = encode_cursor(items[-1]["created_at"], items[-1]["request_id"]) if more else None
    return Page(items=items, next_cursor=cursor)


# --- spend ---------------------------------------------------------------------------------------


def _group_expr(group_by: GroupBy, dialect: Dialect) -> str:
    """A missing team, key or model (a request refused before it was known) groups under ''."""
    column = {"model": "model", "key": "key_id", "team": "team"}.get(group_by)
    if column is not None:
        return f"COALESCE({column}, '')"
    if group_by == "day":
        return dialect.day_expr
    raise ValueError(f"unknown group_by: {group_by!r}")


def spend_statement(query: SpendQuery, dialect: Dialect) -> Statement:
    """Every record counts as a request, refused or failed ones too; sums are over all records."""
    conditions: list[str] = []
    params: list[Any] = []
    if query.team is not None:
        conditions.append("team = ?")
        params.append(query.team)
    if query.since is not None:
        conditions.append("created_at >= ?")
        params.append(float(query.since))
    if query.until is not None:
        conditions.append("created_at < ?")
        params.append(float(query.until))
    sql = (f"SELECT {_group_expr(query.group_by, dialect)} AS grp, COUNT(*) AS requests, "
           "SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, "
           f"SUM(cost_micros) AS cost_micros FROM requests{where(conditions)} GROUP BY grp")
    return Statement(sql, tuple(params))


def spend_rows(rows: Sequence[Mapping[str, Any]]) -> list[SpendRow]:
    """Largest cost first, then group name; sorted here so both backends agree on collation.

    ``int`` because PostgreSQL's SUM(bigint) is NUMERIC and arrives as ``Decimal``.
    """
    out = [SpendRow(group=str(r["grp"]), requests=int(r["requests"]),
                    prompt_tokens=int(r["prompt_tokens"] or 0),
                    completion_tokens=int(r["completion_tokens"] or 0),
                    cost_micros=int(r["cost_micros"] or 0)) for r in rows]
    out.sort(key=lambda s: (-s.cost_micros, s.group))
    return out


# --- keys ----------------------------------------------------------------------------------------

_KEY_COLS = ", ".join(KEY_COLUMNS)
INSERT_KEY = f"INSERT INTO api_keys ({_KEY_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
FIND_KEY = f"SELECT {_KEY_COLS} FROM api_keys WHERE key_hash = ?"
#: COALESCE keeps the first revocation time when a key is revoked twice.
REVOKE_KEY = (f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? "
              f"RETURNING {_KEY_COLS}")


def list_keys_statement(team: str | None) -> Statement:
    """Newest first; ``id`` breaks ties so the order is total."""
    if team is None:
        return Statement(f"SELECT {_KEY_COLS} FROM api_keys ORDER BY created_at DESC, id DESC", ())
    return Statement(f"SELECT {_KEY_COLS} FROM api_keys WHERE team = ? "
                     "ORDER BY created_at DESC, id DESC", (team,))


def key_params(key: StoredKey) -> tuple[Any, ...]:
    revoked = None if key.revoked_at is None else float(key.revoked_at)
    return (key.id, key.team, key.name, key.key_hash, float(key.created_at), revoked)


def row_to_key(row: Mapping[str, Any]) -> StoredKey:
    """SQLite's ``RETURNING`` can hand back an integral REAL as an int, hence the ``float``."""
    return StoredKey(id=row["id"], team=row["team"], name=row["name"], key_hash=row["key_hash"],
                     created_at=float(row["created_at"]),
                     revoked_at=_opt_float(row["revoked_at"]))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)

