"""Any OpenAI-compatible API (OpenAI, vLLM, Ollama, Groq...) over one pool of keep-alive
connections.

This is the hot path, so it does as little as it can: the client's body is sent as it came (model
renamed), a non-streamed answer is parsed once for its usage and relayed as the upstream's own
bytes, and stream events are handed on as they arrive. The HTTP client was chosen by
measurement: aiohttp's pool served about 8x what httpx's did on this project's machine, and the
project's own ``h1`` client costs under a third of aiohttp's CPU per request (see ``h1``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout
from gateway.providers.base import Completion, UpstreamCall, parse_usage
from gateway.providers.deadlines import DeadlineExceeded, Deadlines
from gateway.providers.h1 import H1Error, Pool, Response

DEFAULT_API_BASE = "https://api.openai.com/v1"
_PATHS = {"chat": "/chat/completions", "completions": "/completions",
          "embeddings": "/embeddings"}
MAX_EVENT_BYTES = 8 * 2**20  # one SSE line; a larger one is an upstream fault, not a chunk
_PASSED_HEADERS = ("retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                   "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens")


class OpenAICompatProvider:
    def __init__(self) -> None:
        self._pool = Pool(keepalive_s=30.0)
        self._deadlines = Deadlines()

    async def close(self) -> None:
        await self._deadlines.close()
        self._pool.close()

    def _request(self, call: UpstreamCall) -> tuple[str, bytes, dict[str, str]]:
        m = call.model
        url = (m.api_base or DEFAULT_API_BASE).rstrip("/") + _PATHS[call.endpoint]
        headers = {"content-type": "application/json", "x-request-id": call.request_id}
        if m.api_key:
            headers["authorization"] = f"Bearer {m.api_key}"
        return url, orjson.dumps(call.body), headers

    async def complete(self, call: UpstreamCall) -> Completion:
        url, data, headers = self._request(call)
        try:
            with self._deadlines.watch(call.model.timeout_s):  # no timer per request
                resp = await self._pool.request(b"POST", url, headers, data)
                raw = await resp.read()
        except DeadlineExceeded:
            raise UpstreamTimeout(f"The upstream did not answer within {call.model.timeout_s}s."
                                  ) from None
        except H1Error as exc:
            raise UpstreamError(f"The upstream could not be reached: {exc}.") from None
        if resp.status >= 400:
            raise _http_error(resp.status, raw, resp.headers)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError("The upstream returned invalid JSON.") from None
        if not isinstance(body, dict):
            raise UpstreamError("The upstream returned JSON that is not an object.")
        return Completion(body, parse_usage(body.get("usage")), raw)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[list[bytes], None]:
        url, data, headers = self._request(call)
        headers["accept"] = "text/event-stream"
        timeout = call.model.timeout_s
        try:
            with self._deadlines.watch(timeout):
                resp = await self._pool.request(b"POST", url, headers, data)
        except DeadlineExceeded:
            raise UpstreamTimeout(f"The upstream did not answer within {timeout}s.") from None
        except H1Error as exc:
            raise UpstreamError(f"The upstream could not be reached: {exc}.") from None
        finished = False
        try:
            if resp.status >= 400:
                with self._deadlines.watch(timeout):
                    raw = await resp.read()
                raise _http_error(resp.status, raw, resp.headers)
            async for events in _events(resp, self._deadlines, timeout):
                if events and events[-1] == b"[DONE]":
                    finished = True
                    if len(events) > 1:
                        yield events[:-1]
                    return
                yield events
            raise UpstreamError("The upstream closed the stream before it was complete.")
        except DeadlineExceeded:
            raise UpstreamTimeout(f"The upstream stopped sending within {timeout}s.") from None
        except H1Error as exc:
            raise UpstreamError(f"The upstream connection failed mid-stream: {exc}.") from None
        finally:
            # A stream left early (client gone, budget spent) must not go back to the pool
            # half-read: close() drops the connection, which also tells the upstream to stop.
            if finished:
                resp.release()
            else:
                resp.close()


async def _events(resp: Response, deadlines: Deadlines, timeout_s: float
                  ) -> AsyncGenerator[list[bytes], None]:
    """The ``data:`` payloads of an SSE body, as lists of the events each network read brought
    (a list ends early at ``[DONE]``, which it includes). Other SSE fields are ignored. Each
    read must come within ``timeout_s`` (the time the consumer takes between reads is not
    counted)."""
    tail = b""
    while True:
        with deadlines.watch(timeout_s):
            data = await resp.next_chunk()
        if not data:
            return
        lines = (tail + data).split(b"\n") if tail else data.split(b"\n")
        tail = lines.pop()
        if len(tail) > MAX_EVENT_BYTES:
            raise UpstreamError("The upstream sent an event larger than "
                                f"{MAX_EVENT_BYTES} bytes.")
        events = []
        for line in lines:
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    events.append(payload)
                    break
                if payload:
                    events.append(payload)
        if events:
            yield events


def _http_error(status: int, raw: bytes, headers: Any) -> UpstreamError:
    """The provider's 4xx passes through with its message; its 5xx becomes our 502."""
    message = f"The upstream returned HTTP {status}."
    etype = code = param = None
    try:
        body = orjson.loads(raw)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            etype = err.get("type") if isinstance(err.get("type"), str) else None
            code = str(err["code"]) if err.get("code") is not None else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
        elif isinstance(err, str):
            message = err
    except orjson.JSONDecodeError:
        pass
    if 400 <= status < 500:
        passed = {h: headers[h] for h in _PASSED_HEADERS if h in headers}
        return UpstreamHTTPError(status, message, error_type=etype, code=code, param=param,
                                 headers=passed)
    return UpstreamError(f"The upstream failed with HTTP {status}: {message}")


