"""The review queue's SQL: flagged items, the rules that fired, the verdict history.

Shared by both log stores: the DDL and every statement, with ``?`` placeholders (the types they
speak are the ``LogStore`` protocol's, in ``stores/logs.py``). Three tables:

* ``flags``: one row per flagged request; ``status`` is the latest verdict (or ``open``) so the
  queue's filters and counts need no join. The id is derived from the request id, which makes a
  retried batch insert a no-op on every replica.
* ``flag_rules``: one row per rule that fired, so "which items did check X flag" and the
  per-rule precision are plain indexed SQL instead of JSON scans.
* ``flag_reviews``: every verdict ever given (who, when, what, why); never updated.

The stored prompt and response are the record's ``review_prompt`` / ``review_response``, which
the policy code fills from its redacted views; nothing here ever sees raw matched text.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.records import RequestRecord
from gateway.stores.logs import STATUSES, FlagQuery, Page, RuleStat, Verdict
from gateway.stores.sql.common import (
    Dialect,
    Statement,
    clamp_limit,
    decode_cursor,
    encode_cursor,
)


def schema(dialect: Dialect) -> list[str]:
    """Idempotent DDL, run after the ``requests`` schema."""
    return [
        f"""CREATE TABLE IF NOT EXISTS flags (
            id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            team TEXT,
            key_id TEXT,
            model TEXT,
            status TEXT NOT NULL,
            rules {dialect.json_type} NOT NULL,
            prompt TEXT,
            response TEXT,
            reviewed_at DOUBLE PRECISION
        )""",
        "CREATE INDEX IF NOT EXISTS flags_team_created ON flags (team, created_at)",
        "CREATE INDEX IF NOT EXISTS flags_created ON flags (created_at)",
        "CREATE INDEX IF NOT EXISTS flags_status_reviewed ON flags (status, reviewed_at)",
        """CREATE TABLE IF NOT EXISTS flag_rules (
            flag_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            rule TEXT NOT NULL,
            check_name TEXT NOT NULL,
            action TEXT NOT NULL,
            direction TEXT NOT NULL,
            PRIMARY KEY (flag_id, position)
        )""",
        "CREATE INDEX IF NOT EXISTS flag_rules_check ON flag_rules (check_name, flag_id)",
        "CREATE INDEX IF NOT EXISTS flag_rules_rule ON flag_rules (rule, flag_id)",
        """CREATE TABLE IF NOT EXISTS flag_reviews (
            id TEXT PRIMARY KEY,
            flag_id TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            reviewer TEXT NOT NULL,
            verdict TEXT NOT NULL,
            note TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS flag_reviews_flag ON flag_reviews (flag_id, at)",
    ]


# --- writing flagged records ---------------------------------------------------------------------

FLAG_COLUMNS: tuple[str, ...] = ("id", "request_id", "created_at", "team", "key_id", "model",
                                 "status", "rules", "prompt", "response", "reviewed_at")
_COLS = ", ".join(FLAG_COLUMNS)
INSERT_FLAG = (f"INSERT INTO flags ({_COLS}) VALUES ({', '.join('?' for _ in FLAG_COLUMNS)}) "
               "ON CONFLICT (request_id) DO NOTHING")
INSERT_FLAG_RULE = ("INSERT INTO flag_rules (flag_id, position, rule, check_name, action, "
                    "direction) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (flag_id, position) DO NOTHING")


def flag_id(request_id: str) -> str:
    """Deterministic, so a batch retried after a lost commit reply inserts nothing twice."""
    return "flg_" + hashlib.sha256(request_id.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class FlagRows:
    flags: list[tuple[Any, ...]]
    rules: list[tuple[Any, ...]]


def flag_rows(records: Sequence[RequestRecord]) -> FlagRows:
    """Bind values for the flagged records of a batch (the others are not queued)."""
    flags: list[tuple[Any, ...]] = []
    rules: list[tuple[Any, ...]] = []
    for r in records:
        if not r.flagged:
            continue
        fid = flag_id(r.request_id)
        flags.append((fid, r.request_id, float(r.created_at), r.team, r.key_id, r.model, "open",
                      orjson.dumps([e.public() for e in r.rules]).decode(), r.review_prompt,
                      r.review_response, None))
        for pos, rule in enumerate(r.rules):
            rules.append((fid, pos, rule.rule or f"rule-{pos}", rule.check, rule.action,
                          rule.direction))
    return FlagRows(flags, rules)


# --- reading -------------------------------------------------------------------------------------


def _filters(query: FlagQuery, *, with_status: bool = True) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("team", query.team), ("model", query.model)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if with_status and query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    if query.check is not None:
        where.append("id IN (SELECT flag_id FROM flag_rules WHERE check_name = ?)")
        params.append(query.check)
    if query.rule is not None:
        where.append("id IN (SELECT flag_id FROM flag_rules WHERE rule = ?)")
        params.append(query.rule)
    if query.since is not None:
        where.append("created_at >= ?")
        params.append(float(query.since))
    if query.until is not None:
        where.append("created_at < ?")
        params.append(float(query.until))
    return where, params


def _where(conditions: list[str], prefix: str = " WHERE ") -> str:
    return f"{prefix}{' AND '.join(conditions)}" if conditions else ""


def list_statement(query: FlagQuery) -> Statement:
    """Newest first, keyset-paginated on (created_at, id); one extra row tells if more exist."""
    where, params = _filters(query)
    if query.cursor:
        created_at, last_id = decode_cursor(query.cursor)
        where.append("(created_at, id) < (?, ?)")
        params += [created_at, last_id]
    params.append(clamp_limit(query.limit) + 1)
    return Statement(f"SELECT {_COLS} FROM flags{_where(where)} "
                     "ORDER BY created_at DESC, id DESC LIMIT ?", tuple(params))


def counts_statement(query: FlagQuery) -> Statement:
    """Items per status under every filter but the status itself (the queue's tab counts)."""
    where, params = _filters(query, with_status=False)
    return Statement(f"SELECT status, COUNT(*) AS n FROM flags{_where(where)} GROUP BY status",
                     tuple(params))


GET_FLAG = f"SELECT {_COLS} FROM flags WHERE id = ?"


def reviews_statement(ids: Sequence[str]) -> Statement:
    marks = ", ".join("?" for _ in ids)
    return Statement("SELECT flag_id, at, reviewer, verdict, note FROM flag_reviews "
                     f"WHERE flag_id IN ({marks}) ORDER BY at, id", tuple(ids))


#: The actions that put an item in the queue: a verdict on the item judges these rules only.
QUEUEING_ACTIONS = ("block", "flag")


def stats_statement(team: str | None, since: float | None, until: float | None) -> Statement:
    """Distinct items per (direction, rule, check, status): a rule firing twice on one item
    counts once. Rule names are unique per direction only, hence the direction.

    Only rules whose action queued the item are counted: a mask or redact rule that also fired
    on it did not ask for a review, so a dismissal is no false alarm of theirs.
    """
    where: list[str] = [f"r.action IN ({', '.join('?' for _ in QUEUEING_ACTIONS)})"]
    params: list[Any] = list(QUEUEING_ACTIONS)
    if team is not None:
        where.append("f.team = ?")
        params.append(team)
    if since is not None:
        where.append("f.created_at >= ?")
        params.append(float(since))
    if until is not None:
        where.append("f.created_at < ?")
        params.append(float(until))
    return Statement(
        "SELECT r.direction AS direction, r.rule AS rule, r.check_name AS check_name, "
        "f.status AS status, COUNT(DISTINCT f.id) AS n "
        f"FROM flag_rules r JOIN flags f ON f.id = r.flag_id{_where(where)} "
        "GROUP BY r.direction, r.rule, r.check_name, f.status", tuple(params))


def row_to_flag(row: Mapping[str, Any]) -> dict[str, Any]:
    """The API's item shape; ``reviews`` is filled by ``attach_reviews``."""
    rules = row["rules"]
    return {
        "id": row["id"], "request_id": row["request_id"], "team": row["team"],
        "key_id": row["key_id"], "model": row["model"],
        "created_at": float(row["created_at"]), "status": row["status"],
        "rules": orjson.loads(rules) if isinstance(rules, str | bytes) else rules,
        "prompt": row["prompt"], "response": row["response"],
        "reviewed_at": None if row["reviewed_at"] is None else float(row["reviewed_at"]),
        "reviews": [],
    }


def attach_reviews(items: list[dict[str, Any]], rows: Sequence[Mapping[str, Any]]) -> None:
    by_id = {item["id"]: item for item in items}
    for r in rows:
        by_id[r["flag_id"]]["reviews"].append({
            "verdict": r["verdict"], "note": r["note"], "reviewer": r["reviewer"],
            "at": float(r["at"])})


def page_of_flags(rows: Sequence[Mapping[str, Any]], limit: int) -> Page:
    limit = clamp_limit(limit)
    items = [row_to_flag(r) for r in rows[:limit]]
    more = len(rows) > limit
    cursor = encode_cursor(items[-1]["created_at"], items[-1]["id"]) if more else None
    return Page(items=items, next_cursor=cursor)


def counts_from_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for r in rows:
        out[str(r["status"])] = int(r["n"])
    return out


def stats_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[RuleStat]:
    """Most decided first (the rules whose precision means most), then by name."""
    acc: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in rows:
        key = (r["rule"], r["check_name"], r["direction"])
        counts = acc.setdefault(key, {s: 0 for s in STATUSES})
        counts[str(r["status"])] = int(r["n"])
    out = [RuleStat(rule, check, c["confirmed"], c["dismissed"], c["open"], direction)
           for (rule, check, direction), c in acc.items()]
    out.sort(key=lambda s: (-(s.confirmed + s.dismissed), -s.open, s.rule, s.direction))
    return out


# --- reviewing and retention ---------------------------------------------------------------------

#: The latest verdict becomes the item's status; ``reviewed_at`` starts its retention clock.
SET_STATUS = "UPDATE flags SET status = ?, reviewed_at = ? WHERE id = ? RETURNING id"
INSERT_REVIEW = ("INSERT INTO flag_reviews (id, flag_id, at, reviewer, verdict, note) "
                 "VALUES (?, ?, ?, ?, ?, ?)")


def review_params(fid: str, v: Verdict) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return ((v.verdict, float(v.at), fid),
            (f"rev_{uuid.uuid4().hex}", fid, float(v.at), v.reviewer, v.verdict, v.note))


#: Old request records, oldest first, one bounded batch per statement.
PURGE_REQUESTS = ("DELETE FROM requests WHERE request_id IN (SELECT request_id FROM requests "
                  "WHERE created_at < ? ORDER BY created_at LIMIT ?)")
#: Reviewed items whose last verdict is older than the cut-off. Open items are never expired:
#: they are work nobody has done yet.
EXPIRED_FLAGS = ("SELECT id FROM flags WHERE status <> 'open' AND reviewed_at < ? "
                 "ORDER BY reviewed_at LIMIT ?")


def purge_flag_statements(ids: Sequence[str]) -> list[Statement]:
    """Children first, by explicit id, so a verdict given meanwhile cannot orphan history."""
    marks = ", ".join("?" for _ in ids)
    return [Statement(f"DELETE FROM {table} WHERE {column} IN ({marks})", tuple(ids))
            for table, column in (("flag_reviews", "flag_id"), ("flag_rules", "flag_id"),
                                  ("flags", "id"))]
