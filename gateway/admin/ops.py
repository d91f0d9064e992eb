"""Admin routes of operations: kill switches, the audit trail and recent alerts.

All of them are for admin keys only (a reviewer gets 403): they act on or reveal every team.
Every change made here is written to the audit trail before the response is sent.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import json_body, json_response, parse_limit, principal_of, require_admin
from gateway.errors import InvalidRequest, NotFound
from gateway.ops.audit import actor_of
from gateway.ops.killswitch import KINDS, Kind
from gateway.services import Services


def routes(s: Services) -> list[Route]:
    async def admin(request: Request) -> str:
        return await _admin(s, request)

    def target(request: Request) -> tuple[Kind, str]:
        kind, name = request.path_params["kind"], request.path_params["name"]
        if kind not in KINDS:
            raise NotFound(f"No switch kind '{kind}' (use model or team).")
        known = name in s.models if kind == "model" else s.auth.team(name) is not None
        if not known:
            raise NotFound(f"No {kind} '{name}'.")
        return kind, name

    async def list_switches(request: Request) -> Response:
        await admin(request)
        await s.ops.switches.refresh()
        return json_response({"items": [sw.public() for sw in s.ops.switches.active()],
                              "next_cursor": None})

    async def disable(request: Request) -> Response:
        actor = await admin(request)
        kind, name = target(request)
        body = await json_body(request)
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise InvalidRequest("'reason' must be a string of at most 500 characters.",
                                 param="reason")
        sw = await s.ops.switches.turn_off(kind, name, reason, actor)
        await s.ops.audit.record(actor, f"{kind}.disable", f"{kind}:{name}", {"reason": reason})
        return json_response(sw.public())

    async def enable(request: Request) -> Response:
        actor = await admin(request)
        kind, name = target(request)
        if not await s.ops.switches.turn_on(kind, name):
            raise NotFound(f"The {kind} '{name}' is not disabled.")
        await s.ops.audit.record(actor, f"{kind}.enable", f"{kind}:{name}")
        return json_response({"kind": kind, "name": name, "disabled": False})

    return [
        Route("/admin/switches", list_switches, methods=["GET"]),
        Route("/admin/switches/{kind}/{name}", disable, methods=["PUT"]),
        Route("/admin/switches/{kind}/{name}", enable, methods=["DELETE"]),
        *_audit_routes(s),
    ]


async def _admin(s: Services, request: Request) -> str:
    p = await principal_of(s, request)
    require_admin(p)
    return actor_of(p)


def _audit_routes(s: Services) -> list[Route]:
    async def audit(request: Request) -> Response:
        await _admin(s, request)
        q = request.query_params
        cursor = q.get("cursor") or None
        if cursor is not None and not cursor.isdigit():
            raise InvalidRequest("'cursor' is not a cursor this API returned.", param="cursor")
        limit = parse_limit(q.get("limit"))
        rows = await s.ops.audit.recent(limit=limit, action=q.get("action") or None,
                                        before_seq=int(cursor) if cursor else None)
        nxt = str(rows[-1].seq) if len(rows) == limit and rows[-1].seq > 1 else None
        return json_response({"items": [r.public() for r in rows], "next_cursor": nxt})

    async def verify(request: Request) -> Response:
        await _admin(s, request)
        result = await s.ops.audit.verify(request.query_params.get("head") or None)
        return json_response(result.public())

    async def alerts(request: Request) -> Response:
        await _admin(s, request)
        limit = parse_limit(request.query_params.get("limit"))
        items = [r.public() for r in reversed(s.budgets.alerts.records)][:limit]
        return json_response({"items": items, "next_cursor": None})

    return [
        Route("/admin/audit", audit, methods=["GET"]),
        Route("/admin/audit/verify", verify, methods=["GET"]),
        Route("/admin/alerts", alerts, methods=["GET"]),
    ]
