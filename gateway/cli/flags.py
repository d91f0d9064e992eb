"""``gateway flags list | show | review | export | stats``: the review queue from a terminal.

It talks to the admin API over HTTP (not to the database), so it works against any deployment
and obeys the same team scoping: a reviewer key sees only its team. The URL and key come from
``--url`` / ``--key`` or ``GATEWAY_URL`` / ``GATEWAY_ADMIN_KEY``; the key is sent only in the
Authorization header and never printed. Only the standard library is used, so the command starts
fast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import IO, Any

from gateway.cli.api import DEFAULT_URL, AdminApi, CliError, admin_api

_FILTERS = ("team", "status", "check", "rule", "model", "since", "until")


def add_flags_parser(sub: Any) -> None:
    """Register ``flags`` and its subcommands on the top-level subparsers of ``gateway``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"gateway base URL (env GATEWAY_URL, default {DEFAULT_URL})")
    common.add_argument("--key", help="admin or reviewer key (env GATEWAY_ADMIN_KEY)")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--team")
    filters.add_argument("--status", choices=("open", "confirmed", "dismissed"))
    filters.add_argument("--check", help="only items where this check fired (pii, regex, ...)")
    filters.add_argument("--rule", help="only items where this rule fired")
    filters.add_argument("--model")
    filters.add_argument("--since", help="unix seconds or ISO date/time (UTC)")
    filters.add_argument("--until", help="unix seconds or ISO date/time (UTC), exclusive")

    flags = sub.add_parser("flags", help="the review queue of flagged responses")
    cmds = flags.add_subparsers(dest="flags_command", required=True)
    ls = cmds.add_parser("list", parents=[common, filters], help="list flagged items")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--cursor", help="next page: the cursor printed under the previous one")
    ls.add_argument("--json", action="store_true", help="print the API's JSON")
    show = cmds.add_parser("show", parents=[common], help="one item with findings and history")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    review = cmds.add_parser("review", parents=[common], help="confirm or dismiss an item")
    review.add_argument("id")
    review.add_argument("verdict", choices=("confirmed", "dismissed", "confirm", "dismiss"))
    review.add_argument("--note", default="")
    export = cmds.add_parser("export", parents=[common, filters], help="every matching item")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    stats = cmds.add_parser("stats", parents=[common], help="per-rule precision")
    stats.add_argument("--team")


def run_flags(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    try:
        api = admin_api(args)
        command = args.flags_command
        if command == "list":
            return _list(api, args, out)
        if command == "show":
            return _show(api, args, out)
        if command == "review":
            return _review(api, args, out)
        if command == "export":
            return _export(api, args, out)
        return _stats(api, args, out)
    except CliError as exc:
        print(f"gateway flags: {exc}", file=sys.stderr)
        return 1


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _FILTERS}


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: list[str], rows: list[list[str]], max_width: int | None = None) -> str:
    """Left-aligned columns; the widest column is cut (with an ellipsis) to fit the terminal."""
    max_width = max_width or shutil.get_terminal_size((120, 20)).columns
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    while sum(widths) + 2 * (len(widths) - 1) > max_width and max(widths) > 12:
        widths[widths.index(max(widths))] -= 1

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[:width - 1] + "…"

    lines = ["  ".join(fit(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [headers, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def _list(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    body = api.json("GET", "/admin/flags", {**_filters(args), "limit": args.limit,
                                            "cursor": args.cursor, "counts": 1})
    if args.json:
        out.write(json.dumps(body, indent=2) + "\n")
        return 0
    rows = [[i["id"], _when(i["created_at"]), i["team"] or "", i["model"] or "", i["status"],
             ", ".join(sorted({str(r.get("rule")) for r in i["rules"]})),
             str(sum(len(r.get("findings") or []) for r in i["rules"]))]
            for i in body["items"]]
    out.write(table(["ID", "CREATED (UTC)", "TEAM", "MODEL", "STATUS", "RULES", "FINDINGS"],
                    rows) + "\n")
    counts = body.get("counts") or {}
    out.write(f"\n{len(rows)} shown; " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    if body["next_cursor"]:
        out.write(f"more: --cursor {body['next_cursor']}\n")
    return 0


def _show(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    item = api.json("GET", f"/admin/flags/{urllib.parse.quote(args.id, safe='')}")
    if args.json:
        out.write(json.dumps(item, indent=2) + "\n")
        return 0
    write_item(item, out)
    return 0


def write_item(item: dict[str, Any], out: IO[str]) -> None:
    for label, value in (("id", item["id"]), ("request", item["request_id"]),
                         ("team", item["team"]), ("key", item["key_id"]),
                         ("model", item["model"]), ("created", _when(item["created_at"]) + " UTC"),
                         ("status", item["status"])):
        out.write(f"{label + ':':<9}{value}\n")
    out.write("\nrules:\n")
    rows = [[str(r.get("rule")), str(r.get("check")), str(r.get("action")), f["label"],
             f"{float(f['score']):.2f}", f"{f['start']}-{f['end']}"]
            for r in item["rules"] for f in (r.get("findings") or [{}]) if f]
    out.write(table(["RULE", "CHECK", "ACTION", "LABEL", "SCORE", "SPAN"], rows) + "\n")
    for name in ("prompt", "response"):
        out.write(f"\n{name} (redacted):\n{item[name] or ''}\n")
    out.write("\nreviews:\n")
    if not item["reviews"]:
        out.write("  (none)\n")
    for v in item["reviews"]:
        note = f": {v['note']}" if v["note"] else ""
        out.write(f"  {_when(v['at'])}  {v['verdict']:<9} by {v['reviewer']}{note}\n")


def _review(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    verdict = {"confirm": "confirmed", "dismiss": "dismissed"}.get(args.verdict, args.verdict)
    item = api.json("POST", f"/admin/flags/{urllib.parse.quote(args.id, safe='')}/review",
                    body={"verdict": verdict, "note": args.note})
    out.write(f"{item['id']}: {item['status']} ({len(item['reviews'])} verdicts so far)\n")
    return 0


def _export(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    data = api.request("GET", "/admin/flags/export", {**_filters(args), "format": args.format})
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
        print(f"wrote {len(data)} bytes to {args.output}", file=sys.stderr)
    else:
        out.write(data.decode())
    return 0


def _stats(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    items = api.json("GET", "/admin/rules/stats", {"team": args.team})["items"]
    rows = [[s["rule"], s["check"], str(s["confirmed"]), str(s["dismissed"]), str(s["open"]),
             "-" if s["precision"] is None else f"{100 * s['precision']:.0f}%"] for s in items]
    out.write(table(["RULE", "CHECK", "CONFIRMED", "DISMISSED", "OPEN", "PRECISION"], rows)
              + "\n")
    return 0
