"""Admin routes of run-time API keys: create (shown once, stored as a hash), list, revoke."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin.http import json_body, json_response, principal_of, require_admin, scoped_team
from gateway.errors import InvalidRequest, NotFound
from gateway.services import Services
from gateway.stores.logs import StoredKey


def routes(s: Services) -> list[Route]:
    async def create_key(request: Request) -> Response:
        p = await principal_of(s, request)
        require_admin(p)
        body = await json_body(request)
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
        require_admin(p)
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
