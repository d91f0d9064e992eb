"""What the SQL backends share: the two dialects, ``?`` placeholders, statements and cursors.

Both SQL backends speak the same SQL (``ON CONFLICT ... DO NOTHING``, row-value comparison and
``RETURNING`` exist in SQLite >= 3.35 and in PostgreSQL), written with ``?`` placeholders;
``numbered`` rewrites them to PostgreSQL's ``$1, $2, ...``. Only the JSON column type and the
UTC-day expression differ, and a ``Dialect`` carries them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two backends' SQL."""

    json_type: str
    #: SQL turning ``created_at`` (unix seconds) into its UTC calendar day, ``YYYY-MM-DD``.
    day_expr: str


SQLITE = Dialect(json_type="TEXT",
                 day_expr="strftime('%Y-%m-%d', created_at, 'unixepoch')")
POSTGRES = Dialect(json_type="JSONB",
                   day_expr="to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')")


def numbered(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$n`` (our SQL has no ``?`` inside literals)."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[Any, ...]


def clamp_limit(limit: int) -> int:
    return max(1, min(MAX_LIMIT, int(limit)))


def encode_cursor(created_at: float, request_id: str) -> str:
    """Opaque cursor naming the last row of a page; ``repr`` keeps the float exact."""
    raw = f"{created_at!r}|{request_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Inverse of ``encode_cursor``; a malformed cursor raises ``ValueError``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, request_id = raw.split("|", 1)
        return float(created_at), request_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("invalid cursor") from exc


def where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""
