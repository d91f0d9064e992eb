"""The review web page at /ui/: queue, detail with verdicts, rule precision, team overview.

Server-rendered Jinja2 templates (autoescaped) and one small script for keyboard shortcuts; no
front-end build. Every page reuses the admin API's scoping and validation (``review.py``), so a
reviewer sees exactly what their key would through the API and gets 404 for other teams' items.
Forms are urlencoded and parsed here, with a size cap, so no multipart dependency is needed.
With ``oidc:`` configured, the login page also offers single sign-on (``ui/oidc.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin.review import flag_query, list_page, record_verdict, visible_flag
from gateway.auth import Principal
from gateway.errors import AuthenticationFailed, GatewayError
from gateway.services import Services
from gateway.stores.logs import STATUSES
from gateway.stores.sql.common import encode_cursor
from gateway.ui import views
from gateway.ui.oidc import OidcSignIn
from gateway.ui.session import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    TTL_S,
    Session,
    SessionCodec,
    same_token,
    session_secret,
)

HERE = Path(__file__).parent
MAX_FORM_BYTES = 16 * 1024
FILTERS = ("team", "status", "check", "rule", "model", "since", "until")
Handler = Callable[[Request], Awaitable[Response]]


class CsrfFailed(GatewayError):
    status = 403
    type = "permission_error"
    code = "csrf_failed"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True)
    env.filters["when"] = views.when
    env.filters["percent"] = views.percent
    return env


async def read_form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise CsrfFailed("Form too large.")
    return dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))


def _filters_of(q: QueryParams) -> dict[str, str]:
    """The queue filters in a query string; the page shows open items unless told otherwise."""
    out = {k: q[k] for k in FILTERS if q.get(k)}
    out.setdefault("status", "open")
    return out


def _api_params(filters: dict[str, str], **extra: str) -> QueryParams:
    params = {k: v for k, v in filters.items() if not (k == "status" and v == "all")}
    return QueryParams({**params, **{k: v for k, v in extra.items() if v}})


class ReviewPage:
    def __init__(self, s: Services) -> None:
        self.s = s
        self.env = _env()
        self.codec = SessionCodec(session_secret(s.settings))
        self.sso = (OidcSignIn(s.auth.oidc, s.auth, self.codec, self.login_form)
                    if s.auth.oidc is not None else None)

    # --- plumbing --------------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status, headers={
            "cache-control": "no-store", "x-frame-options": "DENY",
            "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
            "referrer-policy": "same-origin"})

    def current(self, request: Request) -> tuple[Session, Principal] | None:
        session = self.codec.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        user = session.user
        principal = (self.s.auth.sso(user.name, user.values) if user is not None
                     else self.s.auth.staff(session.digest))
        return (session, principal) if principal else None

    def page(self, handler: Callable[[Request, Session, Principal], Awaitable[Response]],
             *, post: bool = False) -> Handler:
        """Log-in check, CSRF check for posts, and errors rendered as HTML, for one handler."""
        async def endpoint(request: Request) -> Response:
            who = self.current(request)
            if who is None:
                return RedirectResponse("/ui/login", status_code=303)
            session, principal = who
            try:
                if post:
                    form = await read_form(request)
                    if not same_token(form.get("csrf"), session.csrf):
                        raise CsrfFailed("The form expired or did not come from this page; "
                                         "reload and try again.")
                    request.state.form = form
                return await handler(request, session, principal)
            except GatewayError as exc:
                return self.render("error.html", status=exc.http_status(), me=principal,
                                   csrf=session.csrf, message=exc.message)
        return endpoint

    def base(self, session: Session, principal: Principal, **ctx: Any) -> dict[str, Any]:
        teams = ([t.name for t in self.s.settings.teams] if principal.role == "admin"
                 else [principal.team_name])
        return {"me": principal, "csrf": session.csrf, "teams": teams, **ctx}

    # --- log in and out --------------------------------------------------------------------------

    async def login_form(self, request: Request, error: str = "", status: int = 200
                         ) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = self.render("login.html", status=status, csrf=token, error=error, me=None,
                               sso=self.sso.settings.label if self.sso else None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/ui", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        if not same_token(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE) or "-"):
            return await self.login_form(request, "The form expired; please try again.", 403)
        key = form.get("key", "").strip()
        try:
            await self.s.auth.authenticate(key, roles=("admin", "reviewer"))
        except AuthenticationFailed:
            return await self.login_form(request, "That is not an admin or reviewer key.", 401)
        value, _ = self.codec.issue(key)
        response = RedirectResponse("/ui/", status_code=303)
        response.set_cookie(COOKIE, value, max_age=TTL_S, path="/ui", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui", httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request, session: Session, p: Principal) -> Response:
        to = "/ui/login"
        if session.user is not None and self.sso is not None:
            to = await self.sso.logout_url()
        response = RedirectResponse(to, status_code=303)
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
        return response

    # --- pages -----------------------------------------------------------------------------------

    async def queue(self, request: Request, session: Session, p: Principal) -> Response:
        filters = _filters_of(request.query_params)
        cursor = request.query_params.get("cursor", "")
        query = flag_query(p, _api_params(filters, cursor=cursor), self.s)
        items, next_cursor = await list_page(self.s.log_store, query)
        counts = await self.s.log_store.count_flags(query)
        stats = await self.s.log_store.rule_stats(query.team)
        return self.render("queue.html", **self.base(
            session, p, items=items, next_cursor=next_cursor, counts=counts, stats=stats,
            filters=filters, statuses=STATUSES, filter_qs=urlencode(filters),
            done=request.query_params.get("done", ""), qs=lambda **kw: urlencode(
                {k: v for k, v in {**filters, **kw}.items() if v})))

    async def detail(self, request: Request, session: Session, p: Principal) -> Response:
        item = await visible_flag(self.s, p, request.path_params["flag_id"])
        filters = _filters_of(request.query_params)
        nxt = await self._next(p, filters, item)
        return self.render("detail.html", **self.base(
            session, p, item=item, filters=filters, filter_qs=urlencode(filters),
            next_id=nxt, prev_id=request.query_params.get("prev", ""),
            done=request.query_params.get("done", ""),
            prompt=views.highlight(item["prompt"], item["rules"], "input"),
            response=views.highlight(item["response"], item["rules"], "output")))

    async def _next(self, p: Principal, filters: dict[str, str], item: dict[str, Any]
                    ) -> str | None:
        """The item after this one in the filtered queue (keyset: works after a verdict too)."""
        query = flag_query(p, _api_params(filters), self.s)
        query = replace(query, limit=1, cursor=encode_cursor(item["created_at"], item["id"]))
        items, _ = await list_page(self.s.log_store, query)
        return items[0]["id"] if items else None

    async def review(self, request: Request, session: Session, p: Principal) -> Response:
        form: dict[str, str] = request.state.form
        flag_id = request.path_params["flag_id"]
        item = await record_verdict(self.s, p, flag_id, form.get("verdict"), form.get("note"))
        filters = _filters_of(QueryParams(form.get("filters", "")))
        nxt = await self._next(p, filters, item)
        done = {"done": f"{item['status']}:{item['id']}"}
        if nxt:
            return RedirectResponse(f"/ui/flags/{nxt}?{urlencode({**filters, **done})}",
                                    status_code=303)
        return RedirectResponse(f"/ui/?{urlencode({**filters, **done})}", status_code=303)

    async def rules(self, request: Request, session: Session, p: Principal) -> Response:
        query = flag_query(p, _api_params({"team": request.query_params.get("team", "")}),
                           self.s)
        stats = await self.s.log_store.rule_stats(query.team)
        return self.render("rules.html", **self.base(session, p, stats=stats, team=query.team))

    async def teams(self, request: Request, session: Session, p: Principal) -> Response:
        if p.role != "admin":
            return RedirectResponse(f"/ui/teams/{p.team_name}", status_code=303)
        overviews = [await views.team_overview(self.s, t.name) for t in self.s.settings.teams]
        return self.render("teams.html", **self.base(session, p, overviews=overviews))

    async def team(self, request: Request, session: Session, p: Principal) -> Response:
        query = flag_query(p, QueryParams({"team": request.path_params["team"]}), self.s)
        assert query.team is not None
        overview = await views.team_overview(self.s, query.team)
        return self.render("team.html", **self.base(session, p, o=overview))


def ui_routes(s: Services) -> list[BaseRoute]:
    ui = ReviewPage(s)

    async def to_ui(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    sso: list[BaseRoute] = [] if ui.sso is None else [
        Route("/oidc/login", ui.sso.start, methods=["GET"]),
        Route("/oidc/callback", ui.sso.callback, methods=["GET"]),
    ]
    return [
        Route("/ui", to_ui, methods=["GET"]),
        Mount("/ui", routes=[
            Route("/", ui.page(ui.queue), methods=["GET"]),
            Route("/login", ui.login_form, methods=["GET"]),
            Route("/login", ui.login, methods=["POST"]),
            Route("/logout", ui.page(ui.logout, post=True), methods=["POST"]),
            Route("/flags/{flag_id}", ui.page(ui.detail), methods=["GET"]),
            Route("/flags/{flag_id}/review", ui.page(ui.review, post=True), methods=["POST"]),
            Route("/rules", ui.page(ui.rules), methods=["GET"]),
            Route("/teams", ui.page(ui.teams), methods=["GET"]),
            Route("/teams/{team}", ui.page(ui.team), methods=["GET"]),
            *sso,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static"),
        ]),
    ]
