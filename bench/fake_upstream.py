"""A fake OpenAI-compatible upstream that is never the bottleneck of a benchmark.

Raw asyncio protocol + httptools parser (+ uvloop when installed): no framework, no per-request
allocation beyond one JSON parse, so one core serves tens of thousands of requests per second
while the system under test manages a few thousand. The benchmark measures this ceiling at the
start of every run and prints it next to the figures.

Serves ``POST /v1/chat/completions`` (``stream`` true/false; streams end with the usage chunk when
``stream_options.include_usage`` is true, then ``data: [DONE]``), ``POST /v1/embeddings``,
``GET /v1/models`` and ``GET /healthz``. Latency, streamed chunk count and chunk delay are set on
the command line. Responses go out in request order per connection (no pipelining reordering
because each connection handles one request at a time, as HTTP/1.1 clients here do).

    python bench/fake_upstream.py --port 9100 [--latency-ms 0] [--chunks 20] [--chunk-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any, cast

import httptools
import orjson


@dataclass(frozen=True)
class Behaviour:
    """How the fake answers: a fixed delay before answering, stream shape, embedding size."""

    latency_s: float = 0.0
    chunks: int = 20
    chunk_delay_s: float = 0.0
    completion_tokens: int = 20
    embed_dim: int = 256


_JSON_HEAD = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _json_response(body: bytes, status: int = 200) -> bytes:
    reason = b"OK" if status == 200 else b"Error"
    return _JSON_HEAD % (status, reason, len(body)) + body


def _sse_chunk(obj: object) -> bytes:
    """One SSE event framed as one HTTP chunk."""
    data = b"data: " + orjson.dumps(obj) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


_SSE_DONE = b"data: [DONE]\n\n"
_SSE_END = b"%x\r\n%s\r\n0\r\n\r\n" % (len(_SSE_DONE), _SSE_DONE)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_body(model: str, prompt_tokens: int, b: Behaviour) -> bytes:
    text = " ".join(["tok"] * b.completion_tokens)
    return orjson.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": _usage(prompt_tokens, b.completion_tokens),
    })


def stream_events(model: str, prompt_tokens: int, include_usage: bool, b: Behaviour) -> list[bytes]:
    """The framed SSE events of one streamed completion, [DONE] and the chunked terminator last."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}
    events = []
    for i in range(b.chunks):
        delta = {"role": "assistant", "content": "tok"} if i == 0 else {"content": " tok"}
        finish = "stop" if i == b.chunks - 1 else None
        events.append(_sse_chunk({**base, "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}]}))
    if include_usage:
        events.append(_sse_chunk({**base, "choices": [], "usage": _usage(prompt_tokens, b.chunks)}))
    events.append(_SSE_END)
    return events


@functools.lru_cache(maxsize=64)
def _vector(dim: int) -> tuple[float, ...]:
    return tuple(round(0.001 * (i % 97), 3) for i in range(dim))


def embed_body(model: str, inputs: object, b: Behaviour) -> bytes:
    items = inputs if isinstance(inputs, list) else [inputs]
    vector = _vector(b.embed_dim)
    tokens = max(1, sum(len(str(x)) for x in items) // 4)
    return orjson.dumps({
        "object": "list", "model": model,
        "data": [{"object": "embedding", "index": i, "embedding": vector}
                 for i in range(len(items))],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })


def _error(status: int, message: str) -> bytes:
    return _json_response(orjson.dumps({"error": {
        "message": message, "type": "invalid_request_error", "param": None, "code": None}}), status)


class UpstreamProtocol(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request in flight at a time."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(_error(400, "bad http"))
            self._close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if method == b"GET":
            if path in (b"/healthz", b"/health", b"/"):
                self._write(_json_response(b'{"status":"ok"}'))
            elif path.endswith(b"/models"):
                self._write(_json_response(
                    b'{"object":"list","data":[{"id":"bench-model","object":"model"}]}'))
            else:
                self._write(_error(404, "not found"))
            return
        raw = b"".join(self.body)
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._write(_error(400, "malformed JSON"))
            return
        self._answer(path, req, len(raw))

    def _answer(self, path: bytes, req: dict[str, Any], raw_len: int) -> None:
        model = str(req.get("model", "bench-model"))
        prompt_tokens = max(1, raw_len // 4)
        if path.endswith(b"/chat/completions") or path.endswith(b"/completions"):
            if req.get("stream"):
                include = bool((req.get("stream_options") or {}).get("include_usage"))
                events = stream_events(model, prompt_tokens, include, self.b)
                self._send([_SSE_HEAD + events[0], *events[1:]], self.b.chunk_delay_s)
            else:
                self._send([_json_response(chat_body(model, prompt_tokens, self.b))], 0.0)
        elif path.endswith(b"/embeddings"):
            self._send([_json_response(embed_body(model, req.get("input", ""), self.b))], 0.0)
        else:
            self._write(_error(404, "not found"))

    def _send(self, parts: list[bytes], gap_s: float) -> None:
        """A single part with no latency goes out at once (no task); anything else via a task."""
        if self.b.latency_s == 0 and len(parts) == 1:
            self._write(parts[0])
            return
        task = asyncio.ensure_future(self._send_later(parts, gap_s))
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    async def _send_later(self, parts: list[bytes], gap_s: float) -> None:
        """Stream events are written one by one, as a real model emits tokens; with no chunk
        delay the loop is still yielded between them, so each event leaves in its own write."""
        if self.b.latency_s:
            await asyncio.sleep(self.b.latency_s)
        for i, part in enumerate(parts):
            if i:
                await asyncio.sleep(gap_s)
            if not self._write(part):
                return

    def _write(self, data: bytes) -> bool:
        if self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


_TASKS: set[asyncio.Future[None]] = set()


async def serve(host: str, port: int, behaviour: Behaviour) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(behaviour), host, port, backlog=2048, reuse_address=True)
    print(f"fake upstream listening on http://{host}:{port}/v1 ({behaviour})", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0)
    ap.add_argument("--embed-dim", type=int, default=256)
    a = ap.parse_args()
    if a.host != "127.0.0.1" and not a.host.startswith("127."):
        raise SystemExit("the fake upstream listens on loopback only")
    b = Behaviour(a.latency_ms / 1000, max(1, a.chunks), a.chunk_delay_ms / 1000,
                  embed_dim=a.embed_dim)
    try:
        import uvloop
        uvloop.run(serve(a.host, a.port, b))
    except ImportError:
        asyncio.run(serve(a.host, a.port, b))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
