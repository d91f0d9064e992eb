"""What every admin route shares: JSON answers, who is asking, team scoping, query parameters.

An admin key sees every team. A team's reviewer key sees only its own team and gets 404 for any
other team's objects (``scoped_team``), so it cannot even learn which teams exist; actions that
change the gateway need an admin key (``require_admin``: 403 for reviewers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import Principal, bearer_key
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.services import Services


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


def require_admin(p: Principal) -> None:
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


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body
