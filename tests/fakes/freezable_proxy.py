"""A TCP proxy in front of a real server (Redis) that can stop forwarding: a frozen, not dead,
store, for the fail-closed and degraded-mode tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


class FreezableProxy:
    """A TCP proxy in front of Redis that can stop forwarding: a frozen (not dead) Redis."""

    def __init__(self, target_url: str) -> None:
        self._target = urlsplit(target_url)
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        netloc = self._target.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        self.url = urlunsplit(self._target._replace(
            netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    async def stop(self) -> None:
        self._thawed.set()
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        self._thawed.clear()
        try:
            yield
        finally:
            self._thawed.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self._target.hostname or "127.0.0.1", self._target.port or 6379
        up_reader, up_writer = await asyncio.open_connection(host, port)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self._thawed.wait()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()
