"""Every provider that is not ``openai`` or ``mock`` (anthropic, bedrock, vertex_ai, ...): litellm.

litellm translates the OpenAI-shaped body to the provider's own API and back; this module keeps
it in its room. It is the only module that imports litellm, and it does so in the constructor, so
a gateway without such models never pays the ~4 s import. Before the import it pins litellm to
its bundled data (price map, Anthropic beta-header table), which it would otherwise fetch from
GitHub at import or on the first Anthropic call, and it switches off litellm's own callbacks,
debug prints and message logging: the gateway does its own logging, and secrets or prompts must
not leak through a library's side channels.

What the request path relies on:

* Only allow-listed OpenAI parameters of the body reach litellm. litellm's call signature also
  takes ``api_base``, ``api_key``, ``mock_response``, ``metadata``, ... so passing the client's
  body through would let a client redirect the call (with our key) anywhere.
* Parameters the provider cannot take (``presence_penalty`` for Anthropic, ...) are dropped
  (``drop_params``), because the SDKs send some of them by default.
* One attempt per call (``num_retries=0``, ``max_retries=0``): retries are the gateway's policy,
  and a hidden retry would bill and time out twice.
* Errors become ``UpstreamTimeout`` (504), ``UpstreamHTTPError`` (the provider's 4xx, with the
  provider's own message) or ``UpstreamError`` (502); the API key is scrubbed from every message.
* A stream yields OpenAI chunk JSON; its last chunk carries ``usage`` (with ``choices: []``, as
  OpenAI sends it) only when the body asked for ``stream_options.include_usage``. The figures
  are the provider's own (Anthropic: message_start input_tokens, message_delta output_tokens).
  A stream in which the provider said nothing at all is an ``UpstreamError``, not a blank answer.
* Closing the stream early closes the upstream HTTP response, which litellm's own ``aclose``
  does not do for every provider (see ``_close_upstream``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson

from gateway.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout
from gateway.providers.base import Completion, Endpoint, UpstreamCall, parse_usage

log = logging.getLogger(__name__)

#: OpenAI request fields forwarded to litellm, per endpoint. Everything else in the body (and
#: "model", "messages", "prompt", "input", "stream", which are passed explicitly) is ignored.
_PARAMS: dict[Endpoint, frozenset[str]] = {
    "chat": frozenset({
        "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "modalities", "n", "parallel_tool_calls",
        "prediction", "presence_penalty", "reasoning_effort", "response_format", "seed",
        "service_tier", "stop", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user", "web_search_options",
    }),
    "completions": frozenset({
        "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n",
        "presence_penalty", "seed", "stop", "stream_options", "suffix", "temperature", "top_p",
        "user",
    }),
    "embeddings": frozenset({"dimensions", "encoding_format", "user"}),
}

#: The body field that carries the endpoint's input, and litellm's keyword for it.
_INPUT: dict[Endpoint, tuple[str, str]] = {
    "chat": ("messages", "messages"),
    "completions": ("prompt", "prompt"),
    "embeddings": ("input", "input"),
}

#: How long past the model's own timeout the outer guard waits before giving up on litellm's
#: timeout handling (which depends on the provider's HTTP client honouring it).
_GUARD_SLACK_S = 5.0

_LITELLM_SETTINGS: dict[str, bool] = {
    "telemetry": False,  # gone from recent versions; harmless where it still exists
    "suppress_debug_info": True,  # else it print()s "Provider List: ..." to stdout per call
    "set_verbose": False,
    "turn_off_message_logging": True,
    "redact_messages_in_exceptions": True,
    "disable_streaming_logging": True,
}

_LITELLM_CALLBACK_LISTS = (
    "callbacks", "input_callback", "success_callback", "failure_callback", "service_callback",
    "_async_input_callback", "_async_success_callback", "_async_failure_callback",
)


def _load_litellm() -> Any:
    """Import litellm with network fetches, telemetry, debug prints and callbacks turned off.

    The environment switches must be set before the import: the price map is loaded while
    ``litellm/__init__`` runs. ``setdefault`` leaves an operator's explicit choice alone.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Without this the first Anthropic request fetches a beta-header table from GitHub.
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    import litellm

    for name, value in _LITELLM_SETTINGS.items():
        setattr(litellm, name, value)
    for name in _LITELLM_CALLBACK_LISTS:
        if hasattr(litellm, name):
            setattr(litellm, name, [])
    # litellm's loggers inherit the root level; at DEBUG they print every request body (the
    # client's unredacted prompt). The gateway logs what it needs itself.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return litellm


class LitellmProvider:
    """The Provider for litellm-backed models; one instance serves all of them.

    litellm keeps its HTTP clients in its own process-wide cache, so there is nothing per
    instance to pool; ``close`` asks litellm to close those clients.
    """

    def __init__(self) -> None:
        self._litellm = _load_litellm()
        exc = self._litellm.exceptions
        # Ordered: Timeout is checked before the status-code rule, because litellm gives it 408.
        self._timeout_types: tuple[type[BaseException], ...] = (exc.Timeout, TimeoutError)
        self._connection_error_types: tuple[type[BaseException], ...] = (
            exc.APIConnectionError, exc.MidStreamFallbackError)

    async def complete(self, call: UpstreamCall) -> Completion:
        """One non-streamed call; the answer is rebuilt by litellm, so ``raw`` is None."""
        fn, kwargs = self._request(call, stream=False)
        try:
            async with asyncio.timeout(call.model.timeout_s + _GUARD_SLACK_S):
                response = await fn(**kwargs)
            data = _dump(response)
        except Exception as exc:
            raise self._error(exc, call) from None
        if call.endpoint == "chat":
            _restore_null_content(data)
        return Completion(data=data, usage=parse_usage(data.get("usage")), raw=None)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[list[bytes], None]:
        """Yield OpenAI chunk JSON; closing the generator closes the upstream response."""
        fn, kwargs = self._request(call, stream=True)
        guard_s = call.model.timeout_s + _GUARD_SLACK_S
        try:
            async with asyncio.timeout(guard_s):
                upstream = await fn(**kwargs)
        except Exception as exc:
            raise self._error(exc, call) from None
        received = False
        try:
            iterator = upstream.__aiter__()
            while True:
                try:
                    async with asyncio.timeout(guard_s):
                        chunk = await iterator.__anext__()
                    data = _dump(chunk)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise self._error(exc, call) from None
                if _is_placeholder(data):
                    continue
                received = received or _carries_answer(data)
                yield [orjson.dumps(data)]
            if not received:
                # litellm answers a 200 that is not an event stream with a made-up "stop" chunk;
                # the client must not take that for a (blank) answer, nor the budget for a free one.
                raise UpstreamError(f"{call.model.provider}: the upstream stream ended without "
                                    "an answer")
        finally:
            await _close_upstream(upstream)

    async def close(self) -> None:
        """Close litellm's cached HTTP clients (shared by every litellm user in the process)."""
        closer = getattr(self._litellm, "close_litellm_async_clients", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        # litellm's process-wide logging worker runs a task on the current loop; stop it here,
        # or it is left pending when the loop closes.
        with contextlib.suppress(Exception):
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

            await GLOBAL_LOGGING_WORKER.stop()

    # -- helpers --------------------------------------------------------------------------------

    def _request(
        self, call: UpstreamCall, *, stream: bool
    ) -> tuple[Callable[..., Awaitable[Any]], dict[str, Any]]:
        """The litellm coroutine function for the endpoint, and its keyword arguments."""
        model = call.model
        body = call.body
        field, keyword = _INPUT[call.endpoint]
        kwargs: dict[str, Any] = {
            name: value for name, value in body.items()
            if name in _PARAMS[call.endpoint] and value is not None
        }
        kwargs.update({
            "model": f"{model.provider}/{model.upstream_model}",
            keyword: body.get(field),
            "api_base": model.api_base,
            "api_key": model.api_key,
            "timeout": model.timeout_s,
            "drop_params": True,
            "num_retries": 0,
            "max_retries": 0,
        })
        if call.endpoint == "embeddings":
            return self._litellm.aembedding, kwargs
        if stream:
            kwargs["stream"] = True
        else:
            kwargs.pop("stream_options", None)  # only meaningful for streams; some providers 400
        if call.endpoint == "chat":
            # litellm imports its proxy's MCP gateway for any request with tools, and that
            # import needs the optional `mcp` package: without this flag every tool call is a 502.
            kwargs["_skip_mcp_handler"] = True
            return self._litellm.acompletion, kwargs
        return self._litellm.atext_completion, kwargs

    def _error(self, exc: Exception, call: UpstreamCall) -> UpstreamError | UpstreamTimeout:
        """Map a litellm (or guard) exception to the gateway's upstream errors, key scrubbed."""
        provider = call.model.provider
        secret = call.model.api_key
        detail = _scrub(str(getattr(exc, "message", None) or exc), secret)
        log.warning("upstream %s failed for %s (request %s): %s: %s", provider,
                    call.model.name, call.request_id, type(exc).__name__, detail[:500])
        if self._is_timeout(exc, detail):
            return UpstreamTimeout(f"{provider}: the upstream did not answer within "
                                   f"{call.model.timeout_s:g}s")
        status = getattr(exc, "status_code", None)
        message = _provider_message(detail)
        if isinstance(status, int) and 400 <= status < 500:
            return UpstreamHTTPError(status, f"{provider}: {message or detail}",
                                     headers=_retry_headers(exc))
        if message:
            return UpstreamError(f"{provider}: {message}")
        return UpstreamError(f"{provider}: the upstream request failed ({type(exc).__name__})")

    def _is_timeout(self, exc: BaseException, detail: str) -> bool:
        """litellm's Timeout, or a read timeout it reported as a connection error.

        A stream that stalls after its first bytes surfaces as ``MidStreamFallbackError`` wrapping
        ``APIConnectionError("... Timeout on reading data from socket")`` (aiohttp's read timeout
        is not mapped to httpx's), which is a 504 to the client, not a 502.
        """
        seen: BaseException | None = exc
        for _ in range(3):
            if seen is None:
                break
            if isinstance(seen, self._timeout_types):
                return True
            seen = getattr(seen, "original_exception", None)
        return isinstance(exc, self._connection_error_types) and bool(_READ_TIMEOUT.search(detail))


def _dump(obj: Any) -> dict[str, Any]:
    """A litellm response object as a plain OpenAI-shaped dict, None-valued fields left out."""
    data: Any = obj.model_dump(exclude_none=True) if hasattr(obj, "model_dump") else obj
    if not isinstance(data, dict):
        raise TypeError(f"unexpected litellm result {type(obj).__name__}")
    _drop_provider_fields(data)
    return data


def _drop_provider_fields(data: dict[str, Any]) -> None:
    """Remove litellm's ``provider_specific_fields`` everywhere: not OpenAI's, and what it
    repeats (thinking blocks) litellm also puts in ``reasoning_content``."""
    data.pop("provider_specific_fields", None)
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        choice.pop("provider_specific_fields", None)
        for key in ("message", "delta"):
            part = choice.get(key)
            if isinstance(part, dict):
                part.pop("provider_specific_fields", None)


def _restore_null_content(data: dict[str, Any]) -> None:
    """OpenAI always sends ``message.content`` (null for a tool call); exclude_none drops it."""
    for choice in data.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            message.setdefault("content", None)


def _is_placeholder(data: dict[str, Any]) -> bool:
    """litellm's stand-in for a usage chunk when there is no usage: empty choices, nothing else.

    A real usage chunk is rewritten to OpenAI's form instead: ``choices: []``.
    """
    choices = data.get("choices") or []
    if not all(_is_empty_choice(c) for c in choices):
        return False
    if "usage" in data:
        data["choices"] = []
        return False
    return True


def _is_empty_choice(choice: Any) -> bool:
    if not isinstance(choice, dict) or choice.get("finish_reason"):
        return False
    return not choice.get("delta") and not choice.get("text")


def _carries_answer(data: dict[str, Any]) -> bool:
    """Did this chunk come from the provider's answer (text, tool call, usage), not from litellm?"""
    if "usage" in data:
        return True
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if choice.get("text") or delta.get("content") or delta.get("tool_calls") \
                or delta.get("function_call") or delta.get("reasoning_content"):
            return True
    return False


async def _close_upstream(upstream: Any) -> None:
    """Close a litellm stream and the HTTP response under it.

    ``CustomStreamWrapper.aclose`` only closes the provider iterator when that iterator has an
    ``aclose``; Anthropic's does not, and its ``streaming_response`` is a bare
    ``httpx.Response.aiter_lines()`` generator whose closing leaves the response (and the
    upstream's generation) running until garbage collection. So the response is found (the
    iterator's ``http_response``, or the ``self`` of the ``aiter_lines`` generator frame) and
    closed explicitly. Never raises: this runs in a ``finally``.
    """
    responses: list[Any] = []
    generators: list[Any] = []
    node = upstream
    for _ in range(4):  # text wrapper -> stream wrapper -> provider iterator
        if node is None:
            break
        gen = getattr(node, "streaming_response", None)
        if gen is not None and hasattr(gen, "aclose"):
            generators.append(gen)
            frame = getattr(gen, "ag_frame", None)
            owner = frame.f_locals.get("self") if frame is not None else None
            if owner is not None and hasattr(owner, "aclose"):
                responses.append(owner)
        http_response = getattr(node, "http_response", None)
        if http_response is not None:
            responses.append(http_response)
        node = getattr(node, "completion_stream", None)
    closers = [getattr(upstream, "aclose", None)]
    closers += [r.aclose for r in responses] + [g.aclose for g in generators]
    for closer in closers:
        if closer is None:
            continue
        try:
            await closer()
        except Exception as exc:  # a half-dead connection may fail to close; it is gone anyway
            log.debug("closing the upstream stream: %s", exc)


_READ_TIMEOUT = re.compile(r"timeout on reading|read timed? ?out|timed out", re.IGNORECASE)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_PREFIX = re.compile(r"^litellm\.\w+:\s*(?:\w+(?:Exception|Error)\s*-\s*)?")


def _provider_message(detail: str) -> str | None:
    """The provider's own error message from litellm's text, if the provider sent JSON.

    litellm formats errors as ``litellm.RateLimitError: AnthropicException - {...}`` (streams add
    a ``b'...'`` around the JSON); the client should see the provider's message, not that.
    """
    match = _JSON_OBJECT.search(detail)
    if match is None:
        return None
    try:
        payload = orjson.loads(match.group(0).replace("\\'", "'"))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    error = payload.get("error", payload)
    if isinstance(error, dict):
        message = error.get("message")
        return message if isinstance(message, str) and message else None
    return error if isinstance(error, str) and error else None


def _scrub(text: str, secret: str | None) -> str:
    """Remove the API key (and litellm's class-name prefix) from an error text."""
    if secret:
        text = text.replace(secret, "***")
    return _PREFIX.sub("", text.strip()).removesuffix(
        ". Handle with `litellm.InternalServerError`.")


def _retry_headers(exc: Exception) -> dict[str, str]:
    """Pass the provider's Retry-After through, so a client backs off as the provider asked."""
    headers = getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    if headers is None or not hasattr(headers, "get"):
        return {}
    value = headers.get("retry-after")
    return {"retry-after": str(value)} if value else {}
