"""The gateway's error tree: every refusal a client can see, with its HTTP status, type and code.

Deep code raises these; one handler in ``app.py`` renders them in OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` so the official SDKs raise their usual
exception classes. The table below is the whole contract (CONTRACT.md section 5)::

    GatewayError
    ├── AuthenticationFailed      401 authentication_error   invalid_api_key
    ├── ModelNotAllowed           403 permission_error       model_not_allowed
    ├── Forbidden                 403 permission_error       forbidden      (admin-only actions)
    ├── ModelNotFound             404 invalid_request_error  model_not_found
    ├── InvalidRequest            400 invalid_request_error  invalid_request
    ├── RequestTooLarge           413 invalid_request_error  request_too_large
    ├── ContentPolicyViolation    400 invalid_request_error  content_policy_violation
    ├── RateLimited               429 rate_limit_error       rate_limit_exceeded  (+ Retry-After)
    ├── BudgetExceeded            429 insufficient_quota     budget_exceeded      (+ x-should-retry)
    ├── NotFound                  404 invalid_request_error  not_found            (admin objects)
    ├── UpstreamError             502 api_error              upstream_error
    │   └── UpstreamHTTPError     the provider's own 4xx, passed through with its status
    ├── UpstreamTimeout           504 api_error              upstream_timeout
    ├── StoreUnavailable          503 api_error              store_unavailable
    ├── GuardrailTimeout          503 api_error              guardrail_timeout (fails closed)
    └── Unavailable               503 api_error              (a code naming the reason)
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    """Base of every error a client may see; subclasses fix status, type and code."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    code: str = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> dict[str, str]:
        """Extra response headers this error carries (Retry-After and the like)."""
        return {}

    def http_status(self) -> int:
        return self.status

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotAllowed(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class RequestTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class ContentPolicyViolation(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "content_policy_violation"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, int(self.retry_after_s + 0.999)))}


class BudgetExceeded(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"

    def headers(self) -> dict[str, str]:
        return {"x-should-retry": "false"}


class UpstreamError(GatewayError):
    status = 502
    type = "api_error"
    code = "upstream_error"


class UpstreamHTTPError(UpstreamError):
    """The provider answered 4xx: passed through with its status and an OpenAI-shaped body."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None,
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, param=param)
        self._status = status
        self._type = error_type or _default_type(status)
        self._code = code
        self._headers = headers or {}

    def http_status(self) -> int:
        return self._status

    def headers(self) -> dict[str, str]:
        return self._headers

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self._type,
                "param": self.param,
                "code": self._code,
            }
        }

    @property
    def error_code(self) -> str:
        return self._code or f"upstream_{self._status}"


def _default_type(status: int) -> str:
    return {
        401: "authentication_error",
        403: "permission_error",
        404: "invalid_request_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error")


class UpstreamTimeout(GatewayError):
    status = 504
    type = "api_error"
    code = "upstream_timeout"


class StoreUnavailable(GatewayError):
    status = 503
    type = "api_error"
    code = "store_unavailable"


class GuardrailTimeout(GatewayError):
    """The checks did not finish in time; the text is not let through unchecked."""

    status = 503
    type = "api_error"
    code = "guardrail_timeout"


class Unavailable(GatewayError):
    """503 with a caller-chosen code, for kill switches and shutdown."""

    status = 503
    type = "api_error"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def error_code_of(exc: GatewayError) -> str:
    """The code recorded in the request log for this error."""
    if isinstance(exc, UpstreamHTTPError):
        return exc.error_code
    return exc.code
