"""An OpenAI-compatible upstream that answers exactly what the test scripted, served over HTTP.

Where ``FakeOpenAI`` makes up its answers, this one sends back the body (``fake.answer``) or the
stream chunks (``fake.chunks``) the test put there, byte for byte, on ``/v1/chat/completions``
and ``/v1/completions``: a test can plant a value in any field of an answer, including fields
the gateway does not know, and see what reaches the client. ``fake.requests`` keeps each body.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class ScriptedUpstream:
    url: str = ""
    #: The body of a non-streamed answer.
    answer: dict[str, Any] = field(default_factory=dict)
    #: The events of a streamed answer, each sent as its own ``data:`` frame, then ``[DONE]``.
    chunks: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


def _app(fake: ScriptedUpstream) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        fake.requests.append(body)
        if not body.get("stream"):
            return web.Response(body=orjson.dumps(fake.answer), content_type="application/json")
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in fake.chunks:
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    app.router.add_post("/v1/completions", answer)
    return app


@contextlib.contextmanager
def running_scripted_upstream() -> Iterator[ScriptedUpstream]:
    """Serve a ScriptedUpstream on a free loopback port in a thread; ``url`` ends in ``/v1``."""
    fake = ScriptedUpstream()
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

    thread = threading.Thread(target=run, daemon=True, name="scripted-upstream")
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the scripted upstream did not start")
    try:
        yield fake
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
