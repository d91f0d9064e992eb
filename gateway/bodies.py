"""Reading and validating request bodies: size limit, JSON, and the fields the gateway relies on.

Validation is deliberately shallow: the gateway checks what it must understand (model, messages,
stream, token bounds) and passes every other field to the provider untouched, so new OpenAI
parameters work without a gateway release. Hand-written checks instead of a pydantic model keep
this off the profile of the hot path.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Receive

from gateway.errors import InvalidRequest, RequestTooLarge

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


async def read_json(receive: Receive, declared_length: str | None, max_bytes: int
                    ) -> dict[str, Any]:
    """The body as a JSON object; 413 past ``max_bytes`` (checked while reading), 400 if bad.

    Reads the ASGI messages itself rather than through ``Request.stream()``: an async generator
    per request is measurable on the hot path.
    """
    if declared_length is not None and declared_length.isdigit() \
            and int(declared_length) > max_bytes:
        raise RequestTooLarge(f"Request body is larger than {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise InvalidRequest("The client closed the connection before sending the body.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_bytes:
                raise RequestTooLarge(f"Request body is larger than {max_bytes} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    return model


def _check_common(body: dict[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    for field in ("max_tokens", "max_completion_tokens", "n"):
        v = body.get(field)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise InvalidRequest(f"'{field}' must be a positive integer.", param=field)
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")


def validate_chat(body: dict[str, Any]) -> str:
    """Check a chat completions body; returns the requested model name."""
    model = _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array.",
                             param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidRequest(f"messages[{i}] must be an object.", param=f"messages[{i}]")
        if m.get("role") not in _ROLES:
            raise InvalidRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}.",
                                 param=f"messages[{i}].role")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array.",
                                 param=f"messages[{i}].content")
    _check_common(body)
    return model


def validate_completions(body: dict[str, Any]) -> str:
    model = _require_model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str | list):
        raise InvalidRequest("'prompt' is required and must be a string or an array.",
                             param="prompt")
    _check_common(body)
    return model


def validate_embeddings(body: dict[str, Any]) -> str:
    model = _require_model(body)
    value = body.get("input")
    if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
        raise InvalidRequest("'input' is required: a non-empty string or array.", param="input")
    if body.get("stream"):
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
    return model


VALIDATORS = {"chat": validate_chat, "completions": validate_completions,
              "embeddings": validate_embeddings}
