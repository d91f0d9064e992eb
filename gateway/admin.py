"""The admin API: budgets, spend, request log and keys.

An admin key sees every team. A team's reviewer key sees only its own team and gets 404 for any
other team's objects, so it cannot even learn which teams exist. Creating and revoking keys is
for admins only (403 for reviewers).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.auth import Principal, bearer_key
from gateway.budget import micros_to_usd
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.forecast import forecasts
from gateway.services import Services
from gateway.stores.logs import RequestQuery, SpendQuery, StoredKey

_GROUPS = ("model", "key", "day", "team")


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def principal_of(s: Services, request: Request) -> Principal:
    return await s.auth.authenticate(bearer_key(request.headers.get("authorization")),
                                     roles=("admin", "reviewer"))


def scoped_team(p: Principal, team: str | None, s: Services) -> str | None:
    """The team a query may see: a reviewer's own; 404 for another team or an unknown one."""
    if team is not None and s.auth.team(team) is None:
        raise NotFound(f"No team '{team}'.")
    if p.role == "admin":
        return team
    own = p.team_name
    if team is not None and team != own:
        raise NotFound(f"No team '{team}'.")
    return own


def _require_admin(p: Principal) -> None:
    if p.role != "admin":
        raise Forbidden("This action needs an admin key.")


def parse_time(value: str | None, param: str) -> float | None:
    """Unix seconds, or an ISO date / date-time (UTC when no offset is given)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"'{param}' must be unix seconds or an ISO date.", param=param
                             ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_limit(value: str | None, default: int = 50) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise InvalidRequest("'limit' must be an integer from 1 to 1000.", param="limit")
    return int(value)


def parse_bool(value: str | None, param: str) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"'{param}' must be true or false.", param=param)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def admin_routes(s: Services) -> list[Route]:
    async def budget(request: Request) -> Response:
        p = await principal_of(s, request)
        team = scoped_team(p, request.path_params["team"], s)
        assert team is not None
        return json_response(await s.budgets.status(team))

    async def patch_budget(request: Request) -> Response:
        p = await principal_of(s, request)
        team = scoped_team(p, request.path_params["team"], s)
        _require_admin(p)
        assert team is not None
        body = await _json_body(request)
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
            body["forecasts"] = await forecasts(s, scoped_team(p, q.get("team") or None, s))
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
        *_key_routes(s),
    ]


def _key_routes(s: Services) -> list[Route]:
    async def create_key(request: Request) -> Response:
        p = await principal_of(s, request)
        _require_admin(p)
        body = await _json_body(request)
        team, name = body.get("team"), body.get("name", "")
        if not isinstance(team, str) or s.auth.team(team) is None:
            raise InvalidRequest("'team' must name a configured team.", param="team")
        if not isinstance(name, str) or len(name) > 200:
            raise InvalidRequest("'name' must be a string of at most 200 characters.",
                                 param="name")
        secret = "sk-gw-" + secrets.token_urlsafe(32)
        key = StoredKey(id=f"key_{uuid.uuid4().hex[:16]}", team=team, name=name,
                        key_hash=hashlib.sha256(secret.encode()).hexdigest(),
                        created_at=time.time())
        await s.log_store.create_key(key)
        await s.audit.record(p, "key.create", f"key:{key.id}", {"team": team, "name": name})
        return json_response({**key.public(), "key": secret}, status=201)

    async def list_keys(request: Request) -> Response:
        p = await principal_of(s, request)
        team = scoped_team(p, request.query_params.get("team") or None, s)
        keys = await s.log_store.list_keys(team)
        return json_response({"items": [k.public() for k in keys], "next_cursor": None})

    async def revoke_key(request: Request) -> Response:
        p = await principal_of(s, request)
        _require_admin(p)
        key = await s.log_store.revoke_key(request.path_params["key_id"], time.time())
        if key is None:
            raise NotFound(f"No key '{request.path_params['key_id']}'.")
        s.auth.forget(key.key_hash)
        await s.audit.record(p, "key.revoke", f"key:{key.id}", {"team": key.team})
        return json_response(key.public())

    return [
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]
