"""Any OpenAI-compatible API (OpenAI, vLLM, Ollama, Groq...) over one pooled aiohttp session.

This is the hot path, so it does as little as it can: the client's body is sent as it came (model
renamed), a non-streamed answer is parsed once for its usage and relayed as the upstream's own
bytes, and stream events are handed on one by one. aiohttp was chosen by measurement: at 16
concurrent requests its pool served about 8x what httpx's did on this project's machine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import orjson

from gateway.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout
from gateway.providers.base import Completion, UpstreamCall, parse_usage
from gateway.providers.deadlines import DeadlineExceeded, Deadlines

DEFAULT_API_BASE = "https://api.openai.com/v1"
_PATHS = {"chat": "/chat/completions", "completions": "/completions",
          "embeddings": "/embeddings"}
#: aiohttp's own timeouts off (its default is 5 minutes total): ``Deadlines`` bounds the call.
_NO_TIMER = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)
MAX_EVENT_BYTES = 8 * 2**20  # one SSE line; a larger one is an upstream fault, not a chunk
_PASSED_HEADERS = ("retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                   "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens")


class OpenAICompatProvider:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._deadlines = Deadlines()

    def _client(self) -> aiohttp.ClientSession:
        # Built lazily inside the running loop (one per worker process).
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300,
                                             keepalive_timeout=30, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                read_bufsize=2**18, auto_decompress=True, skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        await self._deadlines.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

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
                async with self._client().post(url, data=data, headers=headers,
                                               timeout=_NO_TIMER) as resp:
                    raw = await resp.read()
                    if resp.status >= 400:
                        raise _http_error(resp.status, raw, resp.headers)
        except (DeadlineExceeded, TimeoutError):
            raise UpstreamTimeout(f"The upstream did not answer within {call.model.timeout_s}s."
                                  ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"The upstream could not be reached: {type(exc).__name__}."
                                ) from None
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
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=call.model.timeout_s,
                                        sock_read=call.model.timeout_s)
        try:
            resp = await self._client().post(url, data=data, headers=headers, timeout=timeout)
        except TimeoutError:
            raise UpstreamTimeout(f"The upstream did not answer within {call.model.timeout_s}s."
                                  ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"The upstream could not be reached: {type(exc).__name__}."
                                ) from None
        finished = False
        try:
            if resp.status >= 400:
                raise _http_error(resp.status, await resp.read(), resp.headers)
            async for events in _events(resp.content):
                if events and events[-1] == b"[DONE]":
                    finished = True
                    if len(events) > 1:
                        yield events[:-1]
                    return
                yield events
            raise UpstreamError("The upstream closed the stream before it was complete.")
        except TimeoutError:
            raise UpstreamTimeout("The upstream stopped sending within "
                                  f"{call.model.timeout_s}s.") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"The upstream connection failed mid-stream: "
                                f"{type(exc).__name__}.") from None
        finally:
            # A stream left early (client gone, budget spent) must not go back to the pool
            # half-read: close() drops the connection, which also tells the upstream to stop.
            if finished:
                resp.release()
            else:
                resp.close()


async def _events(content: aiohttp.StreamReader) -> AsyncGenerator[list[bytes], None]:
    """The ``data:`` payloads of an SSE body, as lists of the events each network read brought
    (a list ends early at ``[DONE]``, which it includes). Other SSE fields are ignored."""
    tail = b""
    async for data in content.iter_any():
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


