"""The operations store: the append-only audit log and the kill switches, beside the request log.

It lives in the same database as the request log (``stores.logs``) but in its own tables and on
its own connection, so operations state survives restarts and every replica sees the same
switches. Appending an audit row reads the chain's head and inserts the next row in one
serialised transaction (SQLite ``BEGIN IMMEDIATE``; a transaction-scoped advisory lock on
PostgreSQL), so two replicas can never fork the chain. The row's hash is computed by the caller's
``seal`` function inside that transaction: the store knows nothing about the hashing scheme.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

GENESIS = "0" * 64


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


#: ``seal(prev_hash, content) -> hash``; see ``gateway.ops.audit.seal``.
Seal = Callable[[str, dict[str, Any]], str]


@dataclass(frozen=True, slots=True)
class NewEntry:
    at: float
    actor: str
    action: str
    target: str
    details: str


class OpsStore(Protocol):
    """The audit log and the kill switches (``ops_sqlite``, ``ops_postgres``)."""

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
