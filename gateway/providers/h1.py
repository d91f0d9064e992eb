"""A small HTTP/1.1 client for the upstream hot path: pooled keep-alive connections, one write
per request, responses parsed by httptools (the parser uvicorn uses on the server side).

Why not aiohttp: against the benchmark's fake upstream, an aiohttp ``ClientSession`` spent about
210 µs of CPU per request and this client about 60 µs (``bench/client_cost.py``); the whole
gateway request cost about 450 µs, so aiohttp was almost half of it. The client does what an
OpenAI-compatible API needs and nothing else: a request with a body; a status, headers and a
body read whole or as it arrives (content-length, chunked, or until the server closes); TLS;
keep-alive reuse. No redirects, proxies, cookies or compression (it asks for none).

A pooled connection the server has closed meanwhile is noticed when the close arrives (the
connection is then dropped) or, in the race where it arrives while a request is being written,
by the request failing before any byte of an answer: that request is sent again once on a new
connection, as the server cannot have begun to answer it.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from gateway.tasks import Spawned

#: Unread body bytes above which the socket stops being read until the reader catches up.
HIGH_WATER = 2**20
#: How long a released answer whose end has not arrived yet (a stream's terminating chunk after
#: its ``[DONE]``) is waited for in the background before its connection is given up.
DRAIN_S = 2.0
DRAIN_MAX_BYTES = 2**16  # more than a terminating chunk: not worth keeping the connection for


class H1Error(Exception):
    """The connection failed or the server's answer was not valid HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL goes: the pool key, the request-target and the Host header."""

    scheme: str
    host: str
    port: int
    path: bytes
    host_header: bytes

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


@functools.lru_cache(maxsize=512)
def target(url: str) -> Target:
    """Parsed once per distinct URL (the URLs come from the configuration, so they are few)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = port == (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host_header = host if default else f"{host}:{port}"
    return Target(parts.scheme, parts.hostname, port, path.encode("ascii"),
                  host_header.encode("ascii"))


def _head(method: bytes, t: Target, headers: dict[str, str], length: int) -> bytes:
    # accept-encoding: identity, because a request without the header allows any coding and
    # this client decodes none.
    lines = [method, b" ", t.path, b" HTTP/1.1\r\nhost: ", t.host_header,
             b"\r\naccept-encoding: identity\r\n"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines += [name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n"]
    lines += [b"content-length: ", str(length).encode(), b"\r\n\r\n"]
    return b"".join(lines)


class _Conn(asyncio.Protocol):
    """One connection and the response in progress on it (one request at a time)."""

    def __init__(self, origin: tuple[str, str, int], forget: Callable[[_Conn], None]) -> None:
        self.origin = origin
        self._forget = forget
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.active = False
        self.received = False  # any byte of the current answer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.complete = False
        self.keep_alive = False  # read at the answer's end (the parser forgets it after)
        self.delimited = False  # the body has a length or is chunked (else it ends at close)
        self.error: H1Error | None = None
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence no isinstance check.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.active:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(H1Error(f"invalid HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._forget(self)
        if self.active and not self.complete:
            if self.head_done and not self.delimited:
                self.complete = True  # a body delimited by the close: this is its end
                self._wake()
            else:
                reason = f": {type(exc).__name__}" if exc else ""
                self._fail(H1Error(f"the server closed the connection{reason}"))

    # -- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.delimited = ("content-length" in self.headers
                          or "chunked" in self.headers.get("transfer-encoding", "").lower())
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.buffer.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        self._wake()

    # -- for Pool and Response ------------------------------------------------------------

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, err: H1Error) -> None:
        if self.error is None:
            self.error = err
        self._wake()

    async def wait(self) -> None:
        """Until something happens on the current answer (head, body, end or failure)."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def take(self) -> bytes:
        data = self.buffer[0] if len(self.buffer) == 1 else b"".join(self.buffer)
        self.buffer = []
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and self.error is None and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer whose head has arrived; its body is read with ``read`` or ``next_chunk``.

    Exactly one of ``read`` (which releases), ``release`` or ``close`` must end its use, so that
    its connection goes back to the pool or is closed.
    """

    __slots__ = ("_conn", "_pool", "headers", "status")

    def __init__(self, conn: _Conn, pool: Pool) -> None:
        self._conn = conn
        self._pool = pool
        self.status = conn.status
        self.headers = conn.headers  # lower-case names

    async def next_chunk(self) -> bytes:
        """The body bytes that arrived since the last call; b"" once the body is complete."""
        conn = self._conn
        while True:
            if conn.buffer:
                return conn.take()
            if conn.complete:
                return b""
            if conn.error is not None:
                raise conn.error
            await conn.wait()

    async def read(self) -> bytes:
        conn = self._conn
        try:
            while not conn.complete:
                if conn.error is not None:
                    raise conn.error
                await conn.wait()
            return conn.take()
        finally:
            self.release()

    def release(self) -> None:
        """Back to the pool if the answer was read to its end, else closed."""
        self._pool._release(self._conn)

    def close(self) -> None:
        self._conn.close()


class Pool:
    """Keep-alive connections per origin, most recently used first; no limit on their number
    (as the aiohttp connector it replaces was configured: the upstream is the one to refuse)."""

    def __init__(self, keepalive_s: float = 30.0, max_idle: int = 256) -> None:
        self._keepalive_s = keepalive_s
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str, int], collections.deque[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._all: set[_Conn] = set()
        self._draining = Spawned()

    async def request(self, method: bytes, url: str, headers: dict[str, str],
                      body: bytes) -> Response:
        """Send the request; return once the answer's status and headers have arrived."""
        t = target(url)
        data = _head(method, t, headers, len(body)) + body
        conn, reused = await self._acquire(t)
        try:
            return await self._exchange(conn, data)
        except H1Error:
            if not (reused and not conn.received):
                raise
        # A kept-alive connection the server had closed: send once more on a new one.
        return await self._exchange(await self._connect(t), data)

    async def _exchange(self, conn: _Conn, data: bytes) -> Response:
        conn._reset()
        conn.active = True
        try:
            assert conn.transport is not None
            conn.transport.write(data)
            while not conn.head_done:
                if conn.error is not None:
                    raise conn.error
                if conn.closed:
                    raise H1Error("the server closed the connection")
                await conn.wait()
            coding = conn.headers.get("content-encoding", "identity").lower()
            if coding not in ("identity", ""):
                raise H1Error(f"the server sent a {coding!r}-encoded body unasked")
        except BaseException:
            conn.close()
            raise
        return Response(conn, self)

    async def _acquire(self, t: Target) -> tuple[_Conn, bool]:
        idle = self._idle.get(t.origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive_s:
                return conn, True
            conn.close()
        return await self._connect(t), False

    async def _connect(self, t: Target) -> _Conn:
        loop = asyncio.get_running_loop()
        tls = self._tls() if t.scheme == "https" else None
        try:
            _, conn = await loop.create_connection(
                lambda: _Conn(t.origin, self._all.discard), t.host, t.port, ssl=tls,
                server_hostname=t.host if tls else None)
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise H1Error(f"could not connect to {t.host}:{t.port}: {type(exc).__name__}"
                          ) from exc
        self._all.add(conn)
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # system CAs; SSL_CERT_FILE is honoured
        return self._ssl

    def _release(self, conn: _Conn) -> None:
        if (conn.head_done and not conn.complete and conn.error is None and not conn.closed
                and conn.buffered == 0):
            # Released before its end arrived: a stream whose terminating chunk follows its
            # [DONE]. Losing the connection would cost the next request a new one (a TLS
            # handshake), so its end is awaited off the request's path.
            self._draining.spawn(self._drain(conn))
            return
        if not conn.reusable():
            conn.close()
            return
        conn.active = False
        conn.idle_since = now = time.monotonic()
        idle = self._idle.setdefault(conn.origin, collections.deque())
        while idle and (idle[0].closed or now - idle[0].idle_since >= self._keepalive_s
                        or len(idle) >= self._max_idle):
            idle.popleft().close()
        idle.append(conn)

    async def _drain(self, conn: _Conn) -> None:
        deadline = time.monotonic() + DRAIN_S
        drained = 0
        try:
            while not conn.complete and conn.error is None and not conn.closed:
                await asyncio.wait_for(conn.wait(), max(0.0, deadline - time.monotonic()))
                drained += len(conn.take())
                if drained > DRAIN_MAX_BYTES:
                    break
        except TimeoutError:
            pass
        if conn.complete:
            self._release(conn)
        else:
            conn.close()

    def close(self) -> None:
        self._draining.cancel()
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
