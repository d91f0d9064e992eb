"""A fake Anthropic Messages API (``POST /v1/messages``), served for real on a loopback port.

Tests point a provider (or the whole gateway) at ``fake.url`` and then assert on what reached the
"provider" (``fake.requests``) and on how its failures surface. It speaks the real wire format:
``x-api-key`` authentication, Anthropic's error body, and the exact SSE event sequence of a
streamed message (message_start carrying ``usage.input_tokens``, content blocks, message_delta
carrying ``usage.output_tokens`` and the stop reason, message_stop), because the point is to catch
translation mistakes in the layer in front of it, which a hand-rolled shortcut would hide.

Failures are set per fake (``fake.fail = Fail.status(429)``) and apply to every later request
until reset, so a retrying client cannot sneak past them. The server runs inside the test's own
event loop, and notices a client that goes away mid-stream (``fake.disconnected``).

Usage::

    async with running_fake_anthropic() as fake:
        model = ModelSettings(name="claude", provider="anthropic", model="claude-3-5-haiku",
                              api_base=fake.url, api_key=fake.api_key)
        ...
        assert fake.requests[-1].body["system"] == "Be brief."
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

DEFAULT_API_KEY = "sk-ant-fake-0123456789"
DEFAULT_REPLY = "Hello from the fake Anthropic API."
#: Sent as ``retry-after`` with every 429, as Anthropic does.
RETRY_AFTER_S = 7

FailKind = Literal["status", "hang", "drop", "bad_json"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True, slots=True)
class Fail:
    """How the fake misbehaves; build one with the class methods."""

    kind: FailKind
    status: int = 500
    message: str = ""
    seconds: float = 0.0
    after_deltas: int = 0

    @classmethod
    def http(cls, status: int, message: str | None = None) -> Fail:
        """Answer every request with ``status`` and Anthropic's error body."""
        return cls("status", status=status, message=message or f"fake upstream error {status}")

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Fail:
        """Accept the request and say nothing for ``seconds`` (longer than the client timeout)."""
        return cls("hang", seconds=seconds)

    @classmethod
    def drop(cls, after_deltas: int = 1) -> Fail:
        """Streamed: send ``after_deltas`` text deltas, then cut the TCP connection.

        Non-streamed: cut the connection before answering.
        """
        return cls("drop", after_deltas=after_deltas)

    @classmethod
    def bad_json(cls) -> Fail:
        """Answer 200 with a body that is not JSON."""
        return cls("bad_json")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """What one call sent: the parsed JSON body and the (lower-cased) headers."""

    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeAnthropic:
    """The fake's state: configuration the test may change, and what the fake has seen."""

    api_key: str = DEFAULT_API_KEY
    reply: str = DEFAULT_REPLY
    input_tokens: int = 17
    output_tokens: int = 9
    #: Pause between streamed events, so a test can close the stream while it is still going.
    delta_delay_s: float = 0.0
    #: When set, the answer starts with an extended-thinking block holding this text.
    thinking: str = ""
    fail: Fail | None = None
    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    #: Set when a client went away before a streamed answer was complete.
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def last_body(self) -> dict[str, Any]:
        return self.requests[-1].body

    # -- HTTP ---------------------------------------------------------------------------------

    async def handle_messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            return _error(400, "invalid_request_error", "body is not JSON")
        self.requests.append(RecordedRequest(body=body, headers={
            k.lower(): v for k, v in request.headers.items()}))
        refusal = self._refusal(request, body)
        if refusal is not None:
            return refusal
        fail = self.fail
        if fail is not None and fail.kind == "hang":
            await asyncio.sleep(fail.seconds)
        if fail is not None and fail.kind == "bad_json":
            return web.Response(body=b"<html>not json", content_type="application/json")
        if fail is not None and fail.kind == "drop" and not body.get("stream"):
            _abort(request)
            return web.Response()
        if body.get("stream"):
            return await self._stream(request, body)
        return web.json_response(self._message(body), dumps=_dumps)

    def _refusal(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        """The error answer for a bad key, an invalid body or a configured HTTP failure."""
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        problem = _validate(body)
        if problem:
            return _error(400, "invalid_request_error", problem)
        fail = self.fail
        if fail is not None and fail.kind == "status":
            return _error(fail.status, _ERROR_TYPES.get(fail.status, "api_error"), fail.message)
        return None

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"msg_fake{next(self._ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [*self._thinking_blocks(), {"type": "text", "text": self.reply}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": self._usage(self.output_tokens),
        }

    def _thinking_blocks(self) -> list[dict[str, Any]]:
        if not self.thinking:
            return []
        return [{"type": "thinking", "thinking": self.thinking, "signature": "sig-fake"}]

    async def _stream_thinking(self, resp: web.StreamResponse) -> int:
        """The thinking block's events (index 0); the index of the text block after it."""
        if not self.thinking:
            return 0
        await _event(resp, "content_block_start", {
            "type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": ""}})
        for piece in _pieces(self.thinking):
            await _event(resp, "content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": piece}})
        await _event(resp, "content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig-fake"}})
        await _event(resp, "content_block_stop", {"type": "content_block_stop", "index": 0})
        return 1

    def _usage(self, output_tokens: int) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream",
                                           "cache-control": "no-cache"})
        await resp.prepare(request)
        drop_after = self.fail.after_deltas if self.fail and self.fail.kind == "drop" else None
        start = {**self._message(body), "content": [], "stop_reason": None,
                 "usage": self._usage(1)}
        try:
            await _event(resp, "message_start", {"type": "message_start", "message": start})
            index = await self._stream_thinking(resp)
            await _event(resp, "content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "text", "text": ""}})
            await _event(resp, "ping", {"type": "ping"})
            for n, piece in enumerate(_pieces(self.reply)):
                if drop_after is not None and n >= drop_after:
                    _abort(request)
                    return resp
                if self.delta_delay_s:
                    await asyncio.sleep(self.delta_delay_s)
                await _event(resp, "content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": piece}})
            await _event(resp, "content_block_stop", {"type": "content_block_stop",
                                                      "index": index})
            await _event(resp, "message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": self.output_tokens}})
            await _event(resp, "message_stop", {"type": "message_stop"})
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            # The client closed the connection: aiohttp cancels the handler (handler_cancellation)
            # or the next write fails. Either way the test wants to know.
            self.disconnected.set()
            raise
        return resp


def _validate(body: dict[str, Any]) -> str | None:
    """The few request rules the real API enforces that a translation layer could get wrong."""
    if not isinstance(body.get("model"), str):
        return "model: field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: must be 'user' or 'assistant' (system goes in 'system')"
    return None


def _pieces(text: str) -> list[str]:
    """Split the reply into word-sized deltas, spaces kept, so reassembly is exact."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _error(status: int, error_type: str, message: str) -> web.Response:
    headers = {"retry-after": str(RETRY_AFTER_S)} if status == 429 else None
    return web.json_response(
        {"type": "error", "error": {"type": error_type, "message": message}},
        status=status, headers=headers, dumps=_dumps)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _event(resp: web.StreamResponse, name: str, data: dict[str, Any]) -> None:
    await resp.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")


@contextlib.asynccontextmanager
async def running_fake_anthropic(**config: Any) -> AsyncIterator[FakeAnthropic]:
    """Serve a FakeAnthropic on 127.0.0.1 (a free port) for the duration of the block.

    ``config`` sets FakeAnthropic fields (api_key, reply, input_tokens, ...). ``fake.url`` is the
    base URL to use as a model's ``api_base`` (litellm appends ``/v1/messages``).
    """
    fake = FakeAnthropic(**config)
    app = web.Application()
    app.router.add_post("/v1/messages", fake.handle_messages)
    # handler_cancellation: a client disconnect cancels the handler, which is how the fake
    # observes that the client closed a stream early.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()
