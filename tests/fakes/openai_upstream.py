"""A fake OpenAI-compatible upstream for tests, served for real over HTTP from a background thread.

It answers chat completions (streamed or not), legacy completions and embeddings, records every
request it receives, and misbehaves on demand: set ``fake.mode`` to one of

    ok | status:<code> | hang | invalid_json | drop_mid_stream | no_usage | error_event

``fake.chunks`` sets how many content chunks a stream has (``fake.pieces`` gives them exactly);
``fake.reply`` the text; ``fake.latency_s`` delays every answer's first byte.

``fake.ledger`` is what a provider would bill: one ``Bill`` per request it accepted (keyed by the
caller's ``x-request-id``), with the prompt tokens and the completion tokens actually written to
the wire, the caller's API key (so several gateway replicas given different upstream keys can be
told apart) and whether the answer was completed. ``fake.billed()`` sums it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Bill:
    """One request as the provider bills it: prompt tokens once accepted, completion tokens as
    they are written (a stream cut half way bills the half that was generated)."""

    request_id: str
    api_key: str
    endpoint: str
    prompt_tokens: int
    completion_tokens: int = 0
    stream: bool = False
    started: float = field(default_factory=time.monotonic)
    #: time.monotonic() when the last byte was written; None while in flight or when cut.
    finished: float | None = None


@dataclass(frozen=True)
class Billed:
    requests: int
    prompt_tokens: int
    completion_tokens: int


@dataclass
class FakeOpenAI:
    url: str = ""
    mode: str = "ok"
    reply: str = "Hello from the fake upstream, this is a reply."
    chunks: int = 5
    #: Exact stream pieces (overrides ``chunks``), to split a text at chosen boundaries.
    pieces: list[str] | None = None
    #: When set, the answer is one tool call with these arguments (streamed in 5-char pieces).
    tool_args: str | None = None
    chunk_delay_s: float = 0.0
    #: Write stream bytes in pieces of this size, each its own network write (0: whole events).
    fragment_bytes: int = 0
    prompt_tokens: int = 11
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    completed_streams: int = 0
    served_completion_tokens: int = 0
    latency_s: float = 0.0
    ledger: dict[str, Bill] = field(default_factory=dict)
    #: Set when the fake shuts down: a hung handler lets go then (see ``_failure``).
    stopping: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    def bills(self) -> list[Bill]:
        """A snapshot of the ledger, safe to take from another thread while it grows."""
        return list(self.ledger.values())

    def billed(self, keep: Callable[[Bill], bool] = lambda b: True) -> Billed:
        bills = [b for b in self.bills() if keep(b)]
        return Billed(len(bills), sum(b.prompt_tokens for b in bills),
                      sum(b.completion_tokens for b in bills))

    def open_bill(self, request: web.Request, endpoint: str, stream: bool = False) -> Bill:
        rid = request.headers.get("x-request-id") or f"anon-{len(self.ledger)}"
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        bill = self.ledger[rid] = Bill(rid, key, endpoint, self.prompt_tokens, stream=stream)
        return bill


def _pieces(text: str, n: int) -> list[str]:
    words = text.split(" ")
    n = max(1, min(n, len(words)))
    size = -(-len(words) // n)
    parts = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


def _usage(fake: FakeOpenAI, completion: int) -> dict[str, int]:
    return {"prompt_tokens": fake.prompt_tokens, "completion_tokens": completion,
            "total_tokens": fake.prompt_tokens + completion}


async def _failure(fake: FakeOpenAI) -> web.StreamResponse | None:
    if fake.mode.startswith("status:"):
        status = int(fake.mode.split(":", 1)[1])
        body = {"error": {"message": f"fake upstream says {status}", "type": "invalid_request_error"
                          if status < 500 else "server_error", "param": None,
                          "code": "fake_code"}}
        headers = {"retry-after": "7"} if status == 429 else {}
        return web.Response(status=status, body=orjson.dumps(body),
                            content_type="application/json", headers=headers)
    if fake.mode == "hang":
        # Hang until the fake shuts down. aiohttp does not cancel a handler whose client went
        # away (handler_cancellation is off), and its shutdown waits for running handlers: a
        # plain 30 s sleep here held every test that used "hang" 10 s in teardown, until
        # ``thread.join(10)`` gave up on the fake's thread.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fake.stopping.wait(), 30)
        return web.Response(status=503, body=b"shutting down")
    if fake.mode == "invalid_json":
        return web.Response(body=b"{not json", content_type="application/json")
    return None


def _app(fake: FakeOpenAI) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fake.requests.append(body)
        fake.headers.append(dict(request.headers))
        failed = await _failure(fake)
        if failed is not None:
            return failed
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        bill = fake.open_bill(request, "chat", bool(body.get("stream")))
        words = len(fake.reply.split(" "))
        if body.get("stream") and fake.tool_args is not None:
            return await _stream_tool_call(request, body)
        if body.get("stream"):
            return await _stream(request, body, words, bill)
        data: dict[str, Any] = {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": fake.reply},
                         "finish_reason": "stop"}],
        }
        if fake.tool_args is not None:
            data["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "send", "arguments": fake.tool_args}}]}
            data["choices"][0]["finish_reason"] = "tool_calls"
        if fake.mode != "no_usage":
            data["usage"] = _usage(fake, words)
        fake.served_completion_tokens += words
        bill.completion_tokens = words
        resp = web.Response(body=orjson.dumps(data), content_type="application/json")
        await resp.prepare(request)
        await resp.write_eof()
        bill.finished = time.monotonic()
        return resp

    async def _stream(request: web.Request, body: dict[str, Any], words: int, bill: Bill
                      ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        whole_write = resp.write

        async def write(data: bytes) -> None:
            step = fake.fragment_bytes
            if not step:
                await whole_write(data)
                return
            for start in range(0, len(data), step):
                await whole_write(data[start:start + step])
                await asyncio.sleep(0.0005)  # so the pieces arrive as separate reads

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return b"data: " + orjson.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"

        try:
            await write(chunk({"role": "assistant", "content": ""}))
            pieces = fake.pieces if fake.pieces is not None else _pieces(fake.reply, fake.chunks)
            for i, piece in enumerate(pieces):
                if fake.mode == "drop_mid_stream" and i == 1:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                if fake.mode == "error_event" and i == 1:
                    await write(b'data: {"error": {"message": "overloaded"}}\n\n')
                    return resp
                if fake.chunk_delay_s:
                    await asyncio.sleep(fake.chunk_delay_s)
                await write(chunk({"content": piece}))
                fake.served_completion_tokens += len(piece.split())
                bill.completion_tokens += len(piece.split())
            await write(chunk({}, "stop"))
            opts = body.get("stream_options") or {}
            if opts.get("include_usage") and fake.mode != "no_usage":
                await write(b"data: " + orjson.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                    "model": body["model"], "choices": [], "usage": _usage(fake, words)})
                    + b"\n\n")
            await write(b"data: [DONE]\n\n")
            fake.completed_streams += 1
            bill.finished = time.monotonic()
        except (ConnectionResetError, asyncio.CancelledError):
            fake.disconnects += 1
            raise
        return resp

    async def _stream_tool_call(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        args = fake.tool_args or ""

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return b"data: " + orjson.dumps({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"

        await resp.write(chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": "send", "arguments": ""}}]}))
        for i in range(0, len(args), 5):
            await resp.write(chunk({"tool_calls": [
                {"index": 0, "function": {"arguments": args[i:i + 5]}}]}))
        await resp.write(chunk({}, "tool_calls"))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def completions(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fake.requests.append(body)
        failed = await _failure(fake)
        if failed is not None:
            return failed
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        words = len(fake.reply.split(" "))
        bill = fake.open_bill(request, "completions")
        bill.completion_tokens, bill.finished = words, time.monotonic()
        return web.json_response({
            "id": "cmpl-fake", "object": "text_completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "text": fake.reply, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": _usage(fake, words)}, dumps=lambda o: orjson.dumps(o).decode())

    async def embeddings(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fake.requests.append(body)
        failed = await _failure(fake)
        if failed is not None:
            return failed
        if fake.latency_s:
            await asyncio.sleep(fake.latency_s)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        fake.open_bill(request, "embeddings").finished = time.monotonic()
        return web.json_response({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i in range(len(inputs))],
            "usage": {"prompt_tokens": fake.prompt_tokens, "total_tokens": fake.prompt_tokens},
        }, dumps=lambda o: orjson.dumps(o).decode())

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    return app


@contextlib.contextmanager
def running_fake_openai() -> Iterator[FakeOpenAI]:
    """Serve a FakeOpenAI on a free loopback port in a thread; ``fake.url`` ends in ``/v1``."""
    fake = FakeOpenAI()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(_app(fake), handle_signals=False)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        fake.url = f"http://127.0.0.1:{port}/v1"
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True, name="fake-openai")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake upstream did not start")
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(fake.stopping.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
