"""Server-sent events: an ASGI response that always finishes its stream (frames: the dialect's).

Starlette's ``StreamingResponse`` may leave its iterator to the garbage collector when the client
disconnects (and skips background tasks), which would leave budget holds and request records to
chance. ``SSEResponse`` instead watches for ``http.disconnect``, cancels the pump at once (so the
upstream request is cancelled too) and always awaits the source's ``finish()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from starlette.types import Message, Receive, Scope, Send


class FrameSource(Protocol):
    def frames(self) -> AsyncIterator[bytes]:
        """The SSE frames to send, in order."""

    async def finish(self, disconnected: bool) -> None:
        """Settle and record; called exactly once, whatever happened (never raises)."""


class SSEResponse:
    def __init__(self, source: FrameSource, headers: dict[str, str]) -> None:
        self._source = source
        self._headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._headers += [(b"content-type", b"text/event-stream; charset=utf-8"),
                          (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = False
        pump = asyncio.create_task(self._pump(send))

        async def watch() -> None:
            nonlocal disconnected
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected = True
                    pump.cancel()
                    return

        watcher = asyncio.create_task(watch())
        try:
            await pump
        except asyncio.CancelledError:
            if not disconnected:
                pump.cancel()
                raise
        except OSError:
            disconnected = True
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            # Shielded: a second cancellation (server shutdown) must not skip settlement.
            await asyncio.shield(self._source.finish(disconnected))

    async def _pump(self, send: Send) -> None:
        frames = self._source.frames()
        try:
            # The first frame is made before the headers are sent, so that headers and first
            # event leave back to back: sent the other way round, the client received the
            # headers alone and its first event 0.24 ms later (time to first byte counts that).
            first = await anext(frames, None)
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            if first is not None:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            async for frame in frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()
