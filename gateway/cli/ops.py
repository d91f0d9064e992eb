"""``gateway spend`` and ``gateway audit list | verify``: operations from a terminal.

``spend`` and ``audit list`` talk to the admin API (``--url`` / ``--key`` or ``GATEWAY_URL`` /
``GATEWAY_ADMIN_KEY``), like ``gateway flags``. ``audit verify`` can also read the database named
by a configuration file (``--config``), so the trail can be checked with the gateway stopped and
without trusting the running server. Exit status: 0 ok, 1 error, 2 the chain is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import IO, Any

from gateway.cli.api import DEFAULT_URL, AdminApi, CliError, admin_api

BROKEN = 2


def add_ops_parsers(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"gateway base URL (env GATEWAY_URL, default {DEFAULT_URL})")
    common.add_argument("--key", help="admin key (env GATEWAY_ADMIN_KEY)")
    spend = sub.add_parser("spend", parents=[common],
                           help="spend by team, model, key or day, with forecasts")
    spend.add_argument("--by", choices=("team", "model", "key", "day"), default="team")
    spend.add_argument("--team")
    spend.add_argument("--since", help="unix seconds or ISO date/time (UTC)")
    spend.add_argument("--until", help="unix seconds or ISO date/time (UTC), exclusive")
    spend.add_argument("--no-forecast", action="store_true", help="skip the forecast table")
    spend.add_argument("--json", action="store_true", help="print the API's JSON")
    audit = sub.add_parser("audit", help="the admin audit trail")
    cmds = audit.add_subparsers(dest="audit_command", required=True)
    ls = cmds.add_parser("list", parents=[common], help="newest actions first")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--action", help="only this action (key.create, model.disable, ...)")
    verify = cmds.add_parser("verify", parents=[common],
                             help="check the hash chain; exit 2 if a row was edited or deleted")
    verify.add_argument("--config", help="read the database of this config instead of the API")
    verify.add_argument("--head", help="the head hash printed by an earlier verify")


def run_ops(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.command == "audit" and args.audit_command == "verify" and args.config:
            return _verify_local(args, out)
        api = admin_api(args)
        if args.command == "spend":
            return _spend(api, args, out)
        if args.audit_command == "list":
            return _audit_list(api, args, out)
        return _verify_api(api, args, out)
    except CliError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1


def table(headers: list[str], rows: list[list[str]], out: IO[str]) -> None:
    """A plain aligned table: text columns left, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    right = [any(r[i][:1].isdigit() or r[i][:1] in "$-" for r in rows) and i > 0
             for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    print(line(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)


def usd(v: Any) -> str:
    return "-" if v is None else f"${float(v):,.2f}"


def _day(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _runs_out(f: dict[str, Any]) -> str:
    if f["exhausted"]:
        return "exhausted"
    if f.get("after_period_end"):
        return "after period end" if f["period"] != "total" else "not within a century"
    return _day(f["runs_out_at"])


def _spend(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    data = api.json("GET", "/admin/spend", {
        "group_by": args.by, "team": args.team, "since": args.since, "until": args.until,
        "forecast": "false" if args.no_forecast else "true"})
    if args.json:
        import json

        print(json.dumps(data, indent=2), file=out)
        return 0
    rows = [[str(r["group"] or "-"), str(r["requests"]), str(r["prompt_tokens"]),
             str(r["completion_tokens"]), usd(r["cost_usd"])] for r in data["rows"]]
    table([args.by, "requests", "prompt tok", "completion tok", "cost"], rows, out)
    print(f"total: {usd(data['total_cost_usd'])}", file=out)
    forecasts = data.get("forecasts") or []
    if forecasts:
        print("", file=out)
        frows = [[f["team"], f["period"], usd(f["spent_usd"]), usd(f["limit_usd"]),
                  usd(f["burn_rate_usd_per_day"]) + "/day", usd(f["projected_usd"]),
                  _runs_out(f)] for f in forecasts]
        table(["team", "period", "spent", "budget", "burn rate", "projected at end",
               "budget runs out"], frows, out)
    return 0


def _audit_list(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    data = api.json("GET", "/admin/audit", {"limit": args.limit, "action": args.action})
    rows = [[str(i["seq"]), datetime.fromtimestamp(i["at"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
             i["actor"], i["action"], i["target"]] for i in data["items"]]
    table(["seq", "at (UTC)", "actor", "action", "target"], rows, out)
    return 0


def _report(result: dict[str, Any], out: IO[str]) -> int:
    if result["ok"]:
        print(f"audit trail OK: {result['rows']} rows, head {result['head']}", file=out)
        return 0
    where = f"at row {result['bad_seq']}" if result.get("bad_seq") is not None else "at the end"
    print(f"audit trail BROKEN {where}: {result['reason']} "
          f"({result['rows']} rows verified before it)", file=out)
    return BROKEN


def _verify_api(api: AdminApi, args: argparse.Namespace, out: IO[str]) -> int:
    return _report(api.json("GET", "/admin/audit/verify", {"head": args.head}), out)


def _verify_local(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ops.audit import Audit
    from gateway.settings import load_settings
    from gateway.stores.backends import open_ops_store

    settings = load_settings(args.config)

    async def run() -> dict[str, Any]:
        store = open_ops_store(settings.stores.logs)
        await store.open()
        try:
            return (await Audit(store).verify(args.head)).public()
        finally:
            await store.close()

    return _report(asyncio.run(run()), out)
