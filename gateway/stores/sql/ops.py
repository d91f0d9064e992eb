"""The operations tables' SQL, shared by both operations stores: audit log and kill switches."""

from __future__ import annotations

from typing import Any

from gateway.stores.ops import GENESIS, AuditEntry, NewEntry, Seal, Switch

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
AUDIT_COLUMNS = "seq, at, actor, action, target, details, prev_hash, hash"
HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"


def entry(row: Any) -> AuditEntry:
    return AuditEntry(int(row["seq"]), float(row["at"]), row["actor"], row["action"],
                      row["target"], row["details"], row["prev_hash"], row["hash"])


def switch_of(row: Any) -> Switch:
    return Switch(row["kind"], row["name"], row["reason"], row["actor"],
                  float(row["created_at"]))


def recent_sql(before_seq: int | None, action: str | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    if action is not None:
        where.append("action = ?")
        params.append(action)
    cond = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT {AUDIT_COLUMNS} FROM audit_log{cond} ORDER BY seq DESC LIMIT ?",
            [*params])


INSERT = f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
PAGE = f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
UPSERT_SWITCH = ("INSERT INTO kill_switches (kind, name, reason, actor, created_at) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET "
                  "reason = excluded.reason, actor = excluded.actor, "
                  "created_at = excluded.created_at")
DELETE_SWITCH = "DELETE FROM kill_switches WHERE kind = ? AND name = ?"
SWITCHES = "SELECT kind, name, reason, actor, created_at FROM kill_switches ORDER BY kind, name"


def sealed(entry: NewEntry, head: tuple[int, str] | None, seal: Seal) -> AuditEntry:
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    draft = AuditEntry(seq, entry.at, entry.actor, entry.action, entry.target, entry.details,
                       prev, "")
    return AuditEntry(**{**_as_dict(draft), "hash": seal(prev, draft.content())})


def _as_dict(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
            "details": e.details, "prev_hash": e.prev_hash, "hash": e.hash}


def params(e: AuditEntry) -> tuple[Any, ...]:
    return (e.seq, e.at, e.actor, e.action, e.target, e.details, e.prev_hash, e.hash)


