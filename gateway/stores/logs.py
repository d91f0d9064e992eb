"""The log store interface: request records, the review queue, run-time API keys, spend queries.

Two backends implement it (``logs_sqlite.py``, the embedded default, and ``logs_postgres.py``
for durable logs at scale) and one contract suite (``tests/stores/test_log_store_contract.py``)
runs against both; ``backends.open_log_store(url)`` picks one by the URL scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.records import RequestRecord

GroupBy = Literal["model", "key", "day", "team"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key created with POST /admin/keys; only the SHA-256 of the secret is ever stored."""

    id: str
    team: str
    name: str
    key_hash: str  # hex sha256 of the secret
    created_at: float
    revoked_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "team": self.team, "name": self.name,
                "created_at": self.created_at, "revoked_at": self.revoked_at,
                "revoked": self.revoked_at is not None}


@dataclass(frozen=True, slots=True)
class RequestQuery:
    team: str | None = None
    flagged: bool | None = None
    limit: int = 50
    cursor: str | None = None  # opaque; from a previous Page.next_cursor


@dataclass(frozen=True, slots=True)
class SpendQuery:
    team: str | None = None
    group_by: GroupBy = "model"
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive


@dataclass(frozen=True, slots=True)
class SpendRow:
    group: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


# --- the review queue -------------------------------------------------------------------------

Status = Literal["open", "confirmed", "dismissed"]
VerdictName = Literal["confirmed", "dismissed"]
STATUSES: tuple[Status, ...] = ("open", "confirmed", "dismissed")
VERDICTS: tuple[VerdictName, ...] = ("confirmed", "dismissed")


@dataclass(frozen=True, slots=True)
class FlagQuery:
    """Filters of the queue; every field narrows it (None = no filter)."""

    team: str | None = None
    status: Status | None = None
    check: str | None = None
    rule: str | None = None
    model: str | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One reviewer decision; ``reviewer`` is the principal's key id, never a key."""

    verdict: VerdictName
    note: str
    reviewer: str
    at: float


@dataclass(frozen=True, slots=True)
class RuleStat:
    """Items a rule flagged, by current status; precision is None until something is decided."""

    rule: str
    check: str
    confirmed: int
    dismissed: int
    open: int
    direction: str = ""  # input | output ("" when the record did not say)

    @property
    def precision(self) -> float | None:
        decided = self.confirmed + self.dismissed
        return None if decided == 0 else self.confirmed / decided

    def public(self) -> dict[str, Any]:
        p = self.precision
        return {"rule": self.rule, "check": self.check, "direction": self.direction,
                "confirmed": self.confirmed,
                "dismissed": self.dismissed, "open": self.open,
                "precision": None if p is None else round(p, 4)}


class LogStore(Protocol):
    """Where request records and run-time keys live. Every method may raise on store failure."""

    async def open(self) -> None:
        """Connect and create the schema if needed (idempotent, safe on several replicas)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot answer (used by /readyz)."""

    async def write_records(self, records: Sequence[RequestRecord]) -> None:
        """Insert a batch; a record whose request_id exists already is ignored.

        A record with ``flagged=True`` also becomes an open item of the review queue, in the same
        transaction, so the queue never holds an item whose request was not logged (or misses
        one that was).
        """

    async def query_requests(self, query: RequestQuery) -> Page:
        """Records newest first, as ``RequestRecord.as_row()`` dicts, with cursor pagination."""

    async def spend(self, query: SpendQuery) -> list[SpendRow]:
        """Totals grouped by model alias, key id, UTC day (YYYY-MM-DD) or team; largest cost first.

        Records with status >= 400 and zero cost still count as requests.
        """

    # --- the review queue (its SQL: gateway/stores/sql/flags.py) ---

    async def list_flags(self, query: FlagQuery) -> Page:
        """Items newest first (created_at, then id), with their reviews; cursor pagination.
        A malformed cursor raises ``ValueError``."""

    async def count_flags(self, query: FlagQuery) -> dict[str, int]:
        """Items per status (open, confirmed, dismissed) under every filter except status."""

    async def get_flag(self, flag_id: str) -> dict[str, Any] | None:
        """One item with its full verdict history (oldest first); None when unknown."""

    async def review_flag(self, flag_id: str, verdict: Verdict) -> bool:
        """Append a verdict and make it the item's status; False for an unknown id."""

    async def rule_stats(self, team: str | None, since: float | None = None,
                         until: float | None = None) -> list[RuleStat]:
        """Per (rule, check): items by current status, for the rules' precision."""

    async def purge_requests(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` request records created before ``before``; returns how many."""

    async def purge_reviewed_flags(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` reviewed items (and their history) whose last verdict is older
        than ``before``; open items are kept. Returns how many items went."""

    # --- keys ---

    async def create_key(self, key: StoredKey) -> None: ...

    async def find_key(self, key_hash: str) -> StoredKey | None:
        """The key with this hash, revoked or not; None when unknown."""

    async def list_keys(self, team: str | None) -> list[StoredKey]:
        """Newest first; all teams when team is None."""

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        """Mark revoked; returns the key (None if unknown). Revoking twice keeps the first time."""
