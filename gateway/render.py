"""The one error renderer: status, headers and body of every error the gateway answers with.

Used both by Starlette's exception handlers (every route: OpenAI's error shape) and by the API
fast path in ``gateway.pipeline``, which bypasses Starlette's middleware stack and renders its
own errors in its dialect's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError, InvalidRequest, NotFound

log = logging.getLogger("gateway")


def error_response(request: Request, exc: Exception) -> Response:
    """``exc`` as an OpenAI-shaped JSON response (Starlette's exception handlers call this)."""
    return render_error(exc, getattr(request.state, "request_id", None), request.url.path)


def render_error(exc: Exception, request_id: str | None, path: str,
                 shape: Callable[[GatewayError], bytes] = GatewayError.body_bytes) -> Response:
    """``exc`` as a JSON response with a ``shape``d body (OpenAI's unless a dialect says
    otherwise); unknown exceptions are logged and become 500."""
    if not isinstance(exc, GatewayError):
        if isinstance(exc, HTTPException):
            exc = _http_exception(exc)
        else:
            log.error("unhandled error on %s: %s", path, type(exc).__name__, exc_info=exc)
            exc = GatewayError("The gateway failed to handle this request.")
    headers = dict(exc.headers())
    if request_id:
        headers["x-request-id"] = request_id
    return Response(shape(exc), status_code=exc.http_status(),
                    media_type="application/json", headers=headers)


def _http_exception(exc: HTTPException) -> GatewayError:
    if exc.status_code == 404:
        return NotFound("No such endpoint.")
    err = InvalidRequest(exc.detail if isinstance(exc.detail, str) else "Bad request.")
    err.status = exc.status_code  # type: ignore[misc]
    return err
