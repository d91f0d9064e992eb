"""Admin routes of money: a team's budget (read, PATCH), spend reports and the request log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import (
    json_body,
    json_response,
    parse_bool,
    parse_limit,
    parse_time,
    principal_of,
    require_admin,
    scoped_team,
)
from gateway.budget.forecast import forecasts
from gateway.budget.scopes import micros_to_usd
from gateway.errors import InvalidRequest
from gateway.services import Services
from gateway.stores.logs import RequestQuery, SpendQuery

_GROUPS = ("model", "key", "day", "team")


def routes(s: Services) -> list[Route]:
    async def budget(request: Request) -> Response:
        p = await principal_of(s, request)
        team = scoped_team(p, request.path_params["team"], s)
        assert team is not None
        return json_response(await s.budgets.status(team))

    async def patch_budget(request: Request) -> Response:
        p = await principal_of(s, request)
        team = scoped_team(p, request.path_params["team"], s)
        require_admin(p)
        assert team is not None
        body = await json_body(request)
        status = await s.budgets.update(team, body)
        await s.audit.record(p, "budget.update", f"team:{team}", body)
        return json_response(status)

    async def spend(request: Request) -> Response:
        p = await principal_of(s, request)
        q = request.query_params
        group_by = q.get("group_by", "model")
        if group_by not in _GROUPS:
            raise InvalidRequest(f"'group_by' must be one of {', '.join(_GROUPS)}.",
                                 param="group_by")
        rows = await s.log_store.spend(SpendQuery(
            team=scoped_team(p, q.get("team") or None, s), group_by=group_by,  # type: ignore[arg-type]
            since=parse_time(q.get("since"), "since"), until=parse_time(q.get("until"), "until"),
        ))
        items = [{"group": r.group, "requests": r.requests, "prompt_tokens": r.prompt_tokens,
                  "completion_tokens": r.completion_tokens,
                  "cost_usd": micros_to_usd(r.cost_micros)} for r in rows]
        total = micros_to_usd(sum(r.cost_micros for r in rows))
        body: dict[str, Any] = {"rows": items, "total_cost_usd": total}
        if parse_bool(q.get("forecast"), "forecast"):
            team = scoped_team(p, q.get("team") or None, s)
            teams = [team] if team is not None else [t.name for t in s.settings.teams]
            body["forecasts"] = await forecasts(s.budgets, s.log_store, teams)
        return json_response(body)

    async def requests_(request: Request) -> Response:
        p = await principal_of(s, request)
        q = request.query_params
        query = RequestQuery(
            team=scoped_team(p, q.get("team") or None, s),
            flagged=parse_bool(q.get("flagged"), "flagged"),
            limit=parse_limit(q.get("limit")), cursor=q.get("cursor") or None,
        )
        try:
            page = await s.log_store.query_requests(query)
        except ValueError:
            raise InvalidRequest("'cursor' is not a cursor this API returned.",
                                 param="cursor") from None
        for item in page.items:
            item["cost_usd"] = micros_to_usd(int(item.get("cost_micros") or 0))
        return json_response({"items": page.items, "next_cursor": page.next_cursor})

    return [
        Route("/admin/teams/{team}/budget", budget, methods=["GET"]),
        Route("/admin/teams/{team}/budget", patch_budget, methods=["PATCH"]),
        Route("/admin/spend", spend, methods=["GET"]),
        Route("/admin/requests", requests_, methods=["GET"]),
    ]
