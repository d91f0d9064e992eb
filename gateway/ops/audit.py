"""The audit trail: admin actions in an append-only, hash-chained table, and its verification.

Each row's hash is ``sha256(prev_hash + canonical JSON of the row)``, the row including its
sequence number, so editing any field of any row, deleting a row in the middle or reordering rows
breaks the chain at that row, and ``verify`` names the first bad one. Deleting rows at the *end*
leaves a valid shorter chain; that is what ``head`` is for: keep the printed head hash somewhere
else (a ticket, a log shipper) and pass it back as ``expect_head``.

Recording never fails the admin action it describes silently: an audit write error propagates,
because an unaudited change is worse than a refused one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.auth import Principal
from gateway.stores.ops import GENESIS, AuditEntry, NewEntry, OpsStore

VERIFY_PAGE = 1000


def canonical(data: Any) -> str:
    """The one JSON spelling of a value: sorted keys, no whitespace, UTF-8."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def seal(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(content)).encode()).hexdigest()


def actor_of(p: Principal) -> str:
    """Who did it, without the secret: role, key id and team."""
    team = f"@{p.team_name}" if p.team_name else ""
    return f"{p.role}:{p.key_id}{team}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    rows: int
    head: str  # the last good hash (GENESIS for an empty log)
    bad_seq: int | None = None
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head": self.head, "bad_seq": self.bad_seq,
                "reason": self.reason}


class Audit:
    def __init__(self, store: OpsStore) -> None:
        self._store = store

    async def record(self, actor: str | Principal, action: str, target: str,
                     details: dict[str, Any] | None = None) -> AuditEntry:
        """Append one action (``key.create``, ``budget.update``, ``flag.review``, ...)."""
        who = actor if isinstance(actor, str) else actor_of(actor)
        entry = NewEntry(time.time(), who, action, target, canonical(details or {}))
        return await self._store.append_audit(entry, seal)

    async def recent(self, *, limit: int = 50, before_seq: int | None = None,
                     action: str | None = None) -> list[AuditEntry]:
        return await self._store.audit_recent(before_seq, limit, action)

    async def verify(self, expect_head: str | None = None) -> VerifyResult:
        """Walk the whole chain in pages; stop at the first row that does not follow."""
        prev, expected_seq, rows = GENESIS, 1, 0
        while True:
            page = await self._store.audit_page(expected_seq - 1, VERIFY_PAGE)
            for row in page:
                problem = _check(row, prev, expected_seq)
                if problem is not None:
                    return VerifyResult(False, rows, prev, row.seq, problem)
                prev, expected_seq, rows = row.hash, expected_seq + 1, rows + 1
            if len(page) < VERIFY_PAGE:
                break
        if expect_head is not None and expect_head != prev:
            return VerifyResult(False, rows, prev, None,
                                "the chain does not end at the expected head "
                                "(rows were removed from the end, or it is another log)")
        return VerifyResult(True, rows, prev)


def _check(row: AuditEntry, prev: str, expected_seq: int) -> str | None:
    if row.seq != expected_seq:
        return f"row {expected_seq} is missing (next row is {row.seq})"
    if row.prev_hash != prev:
        return "prev_hash does not match the previous row (a row before it was changed)"
    if seal(prev, row.content()) != row.hash:
        return "the row's content does not match its hash (the row was edited)"
    return None
