"""The review queue's admin API: list, detail, verdict, per-rule precision and export.

Scoping follows the rest of the admin API: an admin sees every team; a team's reviewer key sees
only its own team's items and gets 404 for anyone else's, the review action included, so it can
neither act on nor learn about other teams' items. The reviewer recorded with a verdict is the
principal's key id (never the key).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.admin.http import json_response, parse_limit, parse_time, principal_of, scoped_team
from gateway.auth import Principal
from gateway.errors import InvalidRequest, NotFound
from gateway.services import Services
from gateway.stores.logs import STATUSES, VERDICTS, FlagQuery, LogStore, Verdict

MAX_NOTE_CHARS = 2000
EXPORT_PAGE = 500
CSV_COLUMNS = ("id", "request_id", "created_at", "team", "key_id", "model", "status", "rules",
               "checks", "findings", "last_verdict", "last_reviewer", "last_note", "prompt",
               "response")


def flag_query(p: Principal, q: QueryParams, s: Services, *, limit_default: int = 50
               ) -> FlagQuery:
    """The queue filters of a query string, scoped to what the principal may see."""
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"'status' must be one of {', '.join(STATUSES)}.", param="status")
    return FlagQuery(
        team=scoped_team(p, q.get("team") or None, s),
        status=status,
        check=q.get("check") or None, rule=q.get("rule") or None,
        model=q.get("model") or None,
        since=parse_time(q.get("since"), "since"), until=parse_time(q.get("until"), "until"),
        limit=parse_limit(q.get("limit"), limit_default), cursor=q.get("cursor") or None,
    )


async def visible_flag(s: Services, p: Principal, flag_id: str) -> dict[str, Any]:
    """The item, or 404 when it does not exist or belongs to a team the principal cannot see."""
    item = await s.log_store.get_flag(flag_id)
    if item is None or (p.role != "admin" and item["team"] != p.team_name):
        raise NotFound(f"No flagged item '{flag_id}'.")
    return item


async def record_verdict(s: Services, p: Principal, flag_id: str, verdict: Any, note: Any
                         ) -> dict[str, Any]:
    """Validate and store a verdict after the visibility check; returns the updated item."""
    await visible_flag(s, p, flag_id)
    if verdict not in VERDICTS:
        raise InvalidRequest(f"'verdict' must be one of {', '.join(VERDICTS)}.", param="verdict")
    note = "" if note is None else note
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS:
        raise InvalidRequest(f"'note' must be a string of at most {MAX_NOTE_CHARS} characters.",
                             param="note")
    if not await s.log_store.review_flag(flag_id, Verdict(verdict=verdict, note=note.strip(),
                                                          reviewer=p.key_id, at=time.time())):
        raise NotFound(f"No flagged item '{flag_id}'.")
    await s.audit.record(p, "flag.review", f"flag:{flag_id}",
                         {"verdict": verdict, "note_chars": len(note.strip())})
    return await visible_flag(s, p, flag_id)


async def list_page(store: LogStore, query: FlagQuery) -> tuple[list[dict[str, Any]], str | None]:
    try:
        page = await store.list_flags(query)
    except ValueError:
        raise InvalidRequest("'cursor' is not a cursor this API returned.",
                             param="cursor") from None
    return page.items, page.next_cursor


def routes(s: Services) -> list[Route]:
    async def list_flags(request: Request) -> Response:
        p = await principal_of(s, request)
        query = flag_query(p, request.query_params, s)
        items, cursor = await list_page(s.log_store, query)
        body: dict[str, Any] = {"items": items, "next_cursor": cursor}
        if request.query_params.get("counts") in ("1", "true"):
            body["counts"] = await s.log_store.count_flags(query)
        return json_response(body)

    async def get_flag(request: Request) -> Response:
        p = await principal_of(s, request)
        return json_response(await visible_flag(s, p, request.path_params["flag_id"]))

    async def review(request: Request) -> Response:
        p = await principal_of(s, request)
        flag_id = request.path_params["flag_id"]
        await visible_flag(s, p, flag_id)  # 404 before looking at the body
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        item = await record_verdict(s, p, flag_id, body.get("verdict"), body.get("note"))
        return json_response(item)

    async def rule_stats(request: Request) -> Response:
        p = await principal_of(s, request)
        q = request.query_params
        stats = await s.log_store.rule_stats(
            scoped_team(p, q.get("team") or None, s),
            parse_time(q.get("since"), "since"), parse_time(q.get("until"), "until"))
        return json_response({"items": [r.public() for r in stats], "next_cursor": None})

    async def export(request: Request) -> Response:
        p = await principal_of(s, request)
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise InvalidRequest("'format' must be jsonl or csv.", param="format")
        query = flag_query(p, request.query_params, s, limit_default=EXPORT_PAGE)
        first, cursor = await list_page(s.log_store, query)  # a bad cursor fails before 200
        rows = _export_rows(s.log_store, query, first, cursor)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {"content-disposition": f'attachment; filename="flags-{stamp}.{fmt}"'}
        if fmt == "csv":
            return StreamingResponse(_csv_lines(rows), media_type="text/csv; charset=utf-8",
                                     headers=headers)
        return StreamingResponse(_jsonl_lines(rows), media_type="application/x-ndjson",
                                 headers=headers)

    return [
        Route("/admin/flags", list_flags, methods=["GET"]),
        Route("/admin/flags/export", export, methods=["GET"]),
        Route("/admin/flags/{flag_id}", get_flag, methods=["GET"]),
        Route("/admin/flags/{flag_id}/review", review, methods=["POST"]),
        Route("/admin/rules/stats", rule_stats, methods=["GET"]),
    ]


async def _export_rows(store: LogStore, query: FlagQuery, first: list[dict[str, Any]],
                       cursor: str | None) -> AsyncIterator[dict[str, Any]]:
    """Every matching item, a page at a time, so an export of any size uses bounded memory."""
    items = first
    while True:
        for item in items:
            yield item
        if cursor is None:
            return
        items, cursor = await list_page(store, replace(query, cursor=cursor))


async def _jsonl_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for item in rows:
        yield orjson.dumps(item) + b"\n"


def _cell(value: Any) -> str:
    """Spreadsheet-safe text: a leading = + - @ would be run as a formula by Excel and friends."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_row(item: dict[str, Any]) -> list[str]:
    last = item["reviews"][-1] if item["reviews"] else {}
    rules = item["rules"] or []
    created = datetime.fromtimestamp(item["created_at"], UTC).isoformat()
    values = [item["id"], item["request_id"], created, item["team"], item["key_id"],
              item["model"], item["status"], " ".join(str(r.get("rule")) for r in rules),
              " ".join(sorted({str(r.get("check")) for r in rules})),
              sum(len(r.get("findings") or []) for r in rules),
              last.get("verdict"), last.get("reviewer"), last.get("note"), item["prompt"],
              item["response"]]
    return [_cell(v) for v in values]


async def _csv_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    async for item in rows:
        writer.writerow(csv_row(item))
        if buf.tell() > 64 * 1024:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()
