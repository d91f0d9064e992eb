"""A small Redis client for the budget store: one pipelined connection, hiredis for replies.

Every admitted request costs one budget script call before it is forwarded (and one more after
its answer is sent), so the client's own CPU is on the hot path. redis-py spent about 200 µs of
CPU per script call here (argument encoding, connection-pool checkout, per-command bookkeeping);
this client packs a command into one ``bytes``, writes it on a single shared connection and
matches replies to callers in order (Redis answers one connection's commands in order), which is
about a third of that (bench/OPTIMISATIONS.md). Many concurrent requests share the connection,
so their commands are pipelined for free.

Failure rules, which the budget engine relies on to fail closed:

* every call is bounded by ``timeout_s``; a call that times out aborts the connection (a Redis
  that stopped answering must not leave later callers queued behind it) and raises
  ``RedisUnavailable``, as does every call that was waiting on that connection;
* a lost connection fails the calls waiting on it; the next call reconnects;
* an error reply raises ``RedisReplyError`` (except ``NOSCRIPT``, handled by ``evalsha``).

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS, system CA store) and
``unix:///path/to/socket[?db=N]``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

Arg = str | int | bytes


class RedisUnavailable(Exception):
    """Redis could not be reached or stopped answering within the timeout."""


class RedisReplyError(Exception):
    """Redis answered with an error reply."""


def pack(args: tuple[Arg, ...]) -> bytes:
    """One command in RESP: ``*<n>`` then ``$<len>``-prefixed arguments."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """Feeds replies to the waiting futures in the order their commands were written."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.waiting:
            reply = self.reader.gets()
            if reply is False:
                return
            fut = self.waiting.popleft()
            if not fut.done():  # a caller that timed out is gone; its reply is dropped
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(RedisUnavailable(f"connection lost: {exc!r}"))


class RespClient:
    """``await client.call("GET", key)``; ``await client.evalsha(script, keys, args)``."""

    def __init__(self, url: str, *, timeout_s: float = 0.25) -> None:
        self._url = url
        self._timeout = timeout_s
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._shas: dict[str, str] = {}

    async def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()

    async def call(self, *args: Arg) -> Any:
        """Send one command and return its reply (strings decoded as UTF-8)."""
        proto = self._proto
        try:
            async with asyncio.timeout(self._timeout):
                if proto is None or proto.closed:
                    proto = await self._connect()
                reply = await self._send(proto, pack(args))
        except TimeoutError:
            self._abort(proto)
            raise RedisUnavailable(f"no answer within {self._timeout}s") from None
        except OSError as exc:
            self._abort(proto)
            raise RedisUnavailable(f"{exc!r}") from None
        if isinstance(reply, hiredis.ReplyError):
            raise RedisReplyError(str(reply))
        return reply

    async def evalsha(self, script: str, keys: list[str], args: list[Arg]) -> Any:
        """Run a Lua script by its digest, loading it first if Redis does not know it (a new or
        flushed server)."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest()
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.call("EVAL", script, len(keys), *keys, *args)

    @staticmethod
    def _send(proto: _Protocol, data: bytes) -> asyncio.Future[Any]:
        if proto.transport is None or proto.closed:
            raise RedisUnavailable("not connected")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        proto.waiting.append(fut)
        proto.transport.write(data)
        return fut

    def _abort(self, proto: _Protocol | None) -> None:
        """Drop the connection this call used (fails every call still waiting on it)."""
        if proto is None:
            return
        if self._proto is proto:
            self._proto = None
        if proto.transport is not None:
            proto.transport.abort()

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # one connect for everyone who found no connection
            if self._proto is not None and not self._proto.closed:
                return self._proto
            target = parse_url(self._url)
            loop = asyncio.get_running_loop()
            if target.path:
                _, proto = await loop.create_unix_connection(_Protocol, target.path)
            else:
                _, proto = await loop.create_connection(
                    _Protocol, target.host, target.port,
                    ssl=ssl.create_default_context() if target.tls else None)
            hello: list[tuple[str, ...]] = []
            if target.password is not None:
                hello.append(("AUTH", target.username, target.password) if target.username
                             else ("AUTH", target.password))
            if target.db:
                hello.append(("SELECT", str(target.db)))
            for command in hello:
                reply = await self._send(proto, pack(command))
                if isinstance(reply, hiredis.ReplyError):
                    assert proto.transport is not None
                    proto.transport.close()
                    raise RedisUnavailable(f"{command[0]} refused: {reply}")
            self._proto = proto
            return proto


class Target:
    """Where and how to connect, from a URL."""

    def __init__(self, host: str, port: int, db: int, username: str | None,
                 password: str | None, tls: bool, path: str | None) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.tls, self.path = tls, path


def parse_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"not a redis URL: {url!r} (redis://, rediss:// or unix://)")
    query = parse_qs(parts.query)
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "unix":
        db = int(query.get("db", ["0"])[0])
        return Target("", 0, db, username, password, False, parts.path)
    path_db = parts.path.lstrip("/")
    db = int(path_db) if path_db else int(query.get("db", ["0"])[0])
    return Target(parts.hostname or "127.0.0.1", parts.port or 6379, db, username, password,
                  parts.scheme == "rediss", None)
