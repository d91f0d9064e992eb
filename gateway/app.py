"""``create_app(settings) -> Starlette``: the routes, the lifespan and the one error renderer."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import pipeline
from gateway.admin import admin_routes, json_response
from gateway.auth import bearer_key
from gateway.errors import GatewayError
from gateway.metrics import CONTENT_TYPE
from gateway.openapi import openapi_document
from gateway.ops import InFlight
from gateway.ops_admin import ops_routes
from gateway.review import review_routes
from gateway.services import Services, build_services
from gateway.settings import Settings, default_settings, load_settings
from gateway.streaming import SSEResponse
from gateway.ui.routes import ui_routes

log = logging.getLogger("gateway")

READY_TIMEOUT_S = 2.0


def error_response(request: Request, exc: Exception) -> Response:
    """The one renderer: every error leaves the gateway in OpenAI's shape."""
    if not isinstance(exc, GatewayError):
        if isinstance(exc, HTTPException):
            exc = _http_exception(exc)
        else:
            log.error("unhandled error on %s: %s", request.url.path, type(exc).__name__,
                      exc_info=exc)
            exc = GatewayError("The gateway failed to handle this request.")
    headers = dict(exc.headers())
    rid = getattr(request.state, "request_id", None)
    if rid:
        headers["x-request-id"] = rid
    return Response(exc.body_bytes(), status_code=exc.http_status(),
                    media_type="application/json", headers=headers)


def _http_exception(exc: HTTPException) -> GatewayError:
    from gateway.errors import InvalidRequest, NotFound

    if exc.status_code == 404:
        return NotFound("No such endpoint.")
    err = InvalidRequest(exc.detail if isinstance(exc.detail, str) else "Bad request.")
    err.status = exc.status_code  # type: ignore[misc]
    return err


async def _gateway_error(request: Request, exc: Exception) -> Response:
    return error_response(request, exc)


def _api_routes(s: Services) -> list[Route]:
    async def chat(request: Request) -> Response | SSEResponse:
        return await pipeline.handle(s, request, "chat")

    async def completions(request: Request) -> Response | SSEResponse:
        return await pipeline.handle(s, request, "completions")

    async def embeddings(request: Request) -> Response | SSEResponse:
        return await pipeline.handle(s, request, "embeddings")

    async def models(request: Request) -> Response:
        p = await s.auth.authenticate(bearer_key(request.headers.get("authorization")),
                                      roles=("client", "admin", "reviewer"))
        allowed = p.team.models if p.team is not None else None
        data = [{"id": m.name, "object": "model", "created": 0, "owned_by": m.provider}
                for m in s.settings.models if allowed is None or m.name in allowed]
        return json_response({"object": "list", "data": data})

    api: list[Route] = []
    for prefix in ("/v1", ""):
        api += [Route(f"{prefix}/chat/completions", chat, methods=["POST"]),
                Route(f"{prefix}/completions", completions, methods=["POST"]),
                Route(f"{prefix}/embeddings", embeddings, methods=["POST"]),
                Route(f"{prefix}/models", models, methods=["GET"])]
    return api


def _ops_routes(s: Services) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        problems: dict[str, str] = {}
        for name, ping in (("logs", s.log_store.ping), ("budgets", s.budgets.ping)):
            try:
                await asyncio.wait_for(ping(), READY_TIMEOUT_S)
            except Exception as exc:
                problems[name] = f"{type(exc).__name__}: store did not answer"
        if problems:
            return json_response({"status": "unavailable", "reasons": problems}, status=503)
        return json_response({"status": "ready"})

    async def metrics(request: Request) -> Response:
        await s.metrics.refresh()
        return Response(s.metrics.render(), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        return json_response(openapi_document())

    return [Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *admin_routes(s)]


def create_app(settings: Settings) -> Starlette:
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    handlers: dict[Any, Any] = {GatewayError: _gateway_error, HTTPException: _gateway_error,
                                Exception: _gateway_error}
    routes = [*_api_routes(services), *_ops_routes(services),
              *review_routes(services), *ui_routes(services), *ops_routes(services)]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers,
                    middleware=[Middleware(InFlight, ops=services.ops)])
    app.state.services = services
    return app


def app_from_env() -> Starlette:
    """The uvicorn factory used by ``gateway serve`` (the config path travels in the env)."""
    path = os.environ.get("GATEWAY_CONFIG")
    return create_app(load_settings(path) if path else default_settings())
