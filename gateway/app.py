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
from starlette.types import Receive, Scope, Send

from gateway import pipeline
from gateway.admin import admin_routes
from gateway.admin.http import json_response
from gateway.admin.openapi import openapi_document
from gateway.auth import bearer_key
from gateway.dialects import INBOUND
from gateway.dialects.base import Dialect
from gateway.errors import GatewayError, ModelNotFound
from gateway.ops.metrics import CONTENT_TYPE
from gateway.ops.operations import InFlight, Ops
from gateway.render import error_response
from gateway.services import Services, build_services
from gateway.settings import Settings, default_settings, load_settings
from gateway.ui.routes import ui_routes

log = logging.getLogger("gateway")

READY_TIMEOUT_S = 2.0


async def _gateway_error(request: Request, exc: Exception) -> Response:
    return error_response(request, exc)


#: The proxied API, served by ``pipeline.serve``: path -> dialect (with and without ``/v1``).
API_PATHS: dict[str, Dialect] = {f"{prefix}{path}": dialect
                                 for prefix in ("/v1", "") for path, dialect in INBOUND.items()}


class _ApiEndpoint:
    """``pipeline.serve`` as a plain ASGI app (Starlette does not wrap a non-function)."""

    def __init__(self, s: Services, dialect: Dialect) -> None:
        self.s = s
        self.dialect = dialect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await pipeline.serve(self.s, self.dialect, scope, receive, send)


class GatewayApp(Starlette):
    """Starlette, with POSTs to the proxied API taken straight to ``pipeline.serve``.

    Those are nearly all of the traffic, and Starlette's middleware stack, exception handlers
    and router cost about a tenth of such a request's CPU (bench/OPTIMISATIONS.md). The fast
    path keeps what they gave these routes: the in-flight count that graceful shutdown waits
    for, and OpenAI-shaped errors (``pipeline.serve`` renders its own). Every other request,
    and other methods on these paths (405), go through Starlette as usual.
    """

    fast: dict[str, _ApiEndpoint]
    ops: Ops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = self.fast.get(scope["path"])
            if target is not None:
                ops = self.ops
                ops.enter()
                try:
                    await target(scope, receive, send)
                finally:
                    ops.leave()
                return
        await super().__call__(scope, receive, send)


def _api_routes(s: Services, fast: dict[str, _ApiEndpoint]) -> list[Route]:
    async def visible(request: Request) -> list[dict[str, Any]]:
        """OpenAI's model objects of the models this key may use."""
        p = await s.auth.authenticate(bearer_key(request.headers.get("authorization")),
                                      roles=("client", "admin", "reviewer"))
        allowed = p.team.models if p.team is not None else None
        return [{"id": m.name, "object": "model", "created": 0, "owned_by": m.provider}
                for m in s.settings.models if allowed is None or m.name in allowed]

    async def models(request: Request) -> Response:
        return json_response({"object": "list", "data": await visible(request)})

    async def model(request: Request) -> Response:
        # Not allowed reads as unknown: a team does not learn what other teams may use.
        name = request.path_params["model_id"]
        found = next((m for m in await visible(request) if m["id"] == name), None)
        if found is None:
            raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
        return json_response(found)

    api = [Route(path, target, methods=["POST"]) for path, target in fast.items()]
    return api + [route for prefix in ("/v1", "") for route in (
        Route(f"{prefix}/models", models, methods=["GET"]),
        Route(f"{prefix}/models/{{model_id:path}}", model, methods=["GET"]))]


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
            Route("/openapi.json", openapi, methods=["GET"])]


def create_app(settings: Settings) -> GatewayApp:
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
    # One endpoint per path, shared by the fast path (POST) and the router (405 otherwise).
    fast = {path: _ApiEndpoint(services, dialect) for path, dialect in API_PATHS.items()}
    routes = [*_api_routes(services, fast), *_ops_routes(services), *admin_routes(services),
              *ui_routes(services)]
    app = GatewayApp(routes=routes, lifespan=lifespan, exception_handlers=handlers,
                     middleware=[Middleware(InFlight, ops=services.ops)])
    app.fast = fast
    app.ops = services.ops
    app.state.services = services
    return app


def app_from_env() -> GatewayApp:
    """The uvicorn factory used by ``gateway serve`` (the config path travels in the env)."""
    path = os.environ.get("GATEWAY_CONFIG")
    return create_app(load_settings(path) if path else default_settings())
