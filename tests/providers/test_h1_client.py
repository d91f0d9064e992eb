"""The upstream HTTP/1.1 client (gateway/providers/h1.py) against raw socket servers that answer
exactly as scripted: the framings a server may choose, keep-alive reuse, a pooled connection
the server closed, broken and slow answers, backpressure and TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.providers.h1 import H1Error, Pool, target

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A TCP server on 127.0.0.1 that counts connections and the requests it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(r, w)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                w.close()

        self._server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def read_request(self, r: asyncio.StreamReader) -> bytes:
        head = await r.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await r.readexactly(length)
        self.requests.append(head + body)
        return body

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/v1/chat/completions"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def pool() -> AsyncIterator[Pool]:
    p = Pool(keepalive_s=30.0)
    yield p
    p.close()


def length_answer(body: bytes, extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra
            + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def echo_forever(srv: Server, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while True:
        body = await srv.read_request(r)
        w.write(length_answer(b'{"echo":' + body + b"}"))
        await w.drain()


async def test_keep_alive_reuses_one_connection(pool: Pool) -> None:
    srv: Server
    srv = await Server(lambda r, w: echo_forever(srv, r, w)).start()
    try:
        for i in range(5):
            resp = await pool.request(b"POST", srv.url(), {"x-n": str(i)}, b"%d" % i)
            assert resp.status == 200 and resp.headers["content-type"] == "application/json"
            assert await resp.read() == b'{"echo":%d}' % i
        assert srv.connections == 1
        first = srv.requests[0]
        assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert f"host: 127.0.0.1:{srv.port}\r\n".encode() in first
        assert b"x-n: 0\r\n" in first and first.endswith(b"content-length: 1\r\n\r\n0")
    finally:
        await srv.stop()


async def test_chunked_body_arrives_as_it_is_sent(pool: Pool) -> None:
    release = asyncio.Event()

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await w.drain()
        await release.wait()
        w.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await w.drain()
        await asyncio.sleep(5)  # keeps the connection open: the end is the last chunk

    srv = await Server(handler).start()
    try:
        resp = await pool.request(b"POST", srv.url(), {}, b"{}")
        assert await resp.next_chunk() == b"first"
        release.set()
        assert await resp.next_chunk() == b"second"
        assert await resp.next_chunk() == b""
        resp.release()
    finally:
        await srv.stop()


async def test_a_stream_released_before_its_last_chunk_keeps_its_connection(pool: Pool) -> None:
    """A stream's reader stops at ``[DONE]``; the chunked terminator comes 50 ms later. The
    connection is kept (its end awaited in the background) and serves the next request."""
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await srv.read_request(r)
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    b"e\r\ndata: [DONE]\n\n\r\n")
            await w.drain()
            await asyncio.sleep(0.05)
            w.write(b"0\r\n\r\n")
            await w.drain()

    srv = await Server(handler).start()
    try:
        for _ in range(2):
            resp = await pool.request(b"POST", srv.url(), {}, b"{}")
            assert await resp.next_chunk() == b"data: [DONE]\n\n"
            resp.release()
            await asyncio.sleep(0.1)
        assert srv.connections == 1
    finally:
        await srv.stop()


async def test_a_body_without_length_ends_at_close_and_is_not_reused(pool: Pool) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{\"whole\": true}")
        await w.drain()

    srv = await Server(handler).start()
    try:
        for _ in range(2):
            resp = await pool.request(b"POST", srv.url(), {}, b"{}")
            assert await resp.read() == b'{"whole": true}'
        assert srv.connections == 2
    finally:
        await srv.stop()


async def test_a_pooled_connection_the_server_closed_is_replaced(pool: Pool) -> None:
    """The server closes every connection right after its answer (as an idle timeout would)."""
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        body = await srv.read_request(r)
        w.write(length_answer(body))
        await w.drain()

    srv = await Server(handler).start()
    try:
        for i in range(3):
            resp = await pool.request(b"POST", srv.url(), {}, b"%d" % i)
            assert await resp.read() == b"%d" % i
            await asyncio.sleep(0.05)  # the close arrives while the connection is idle
        assert srv.connections == 3
    finally:
        await srv.stop()


async def test_close_racing_the_next_request_is_retried_once(pool: Pool) -> None:
    """The server reads the second request on a kept-alive connection and closes without a
    byte of answer: the request goes again on a new connection. A request that fails that
    way on a new connection is not sent a third time."""
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        body = await srv.read_request(r)
        w.write(length_answer(body))
        await w.drain()
        if srv.connections == 1:
            await srv.read_request(r)  # read, then hang up without answering

    srv = await Server(handler).start()
    try:
        assert await (await pool.request(b"POST", srv.url(), {}, b"1")).read() == b"1"
        assert await (await pool.request(b"POST", srv.url(), {}, b"2")).read() == b"2"
        assert srv.connections == 2 and len(srv.requests) == 3

        async def mute(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await srv2.read_request(r)

        srv2 = await Server(mute).start()
        with pytest.raises(H1Error, match="closed the connection"):
            await pool.request(b"POST", srv2.url(), {}, b"3")
        assert srv2.connections == 1
        await srv2.stop()
    finally:
        await srv.stop()


async def test_a_body_cut_short_is_an_error_not_a_short_answer(pool: Pool) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\"")
        await w.drain()

    srv = await Server(handler).start()
    try:
        resp = await pool.request(b"POST", srv.url(), {}, b"{}")
        with pytest.raises(H1Error, match="closed the connection"):
            await resp.read()
    finally:
        await srv.stop()


async def test_garbage_instead_of_http_is_an_error(pool: Pool) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await w.drain()
        await asyncio.sleep(1)

    srv = await Server(handler).start()
    try:
        with pytest.raises(H1Error, match="invalid HTTP response"):
            await pool.request(b"POST", srv.url(), {}, b"{}")
    finally:
        await srv.stop()


async def test_an_encoded_body_it_did_not_ask_for_is_an_error(pool: Pool) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(length_answer(b"\x1f\x8b\x08\x00", b"content-encoding: gzip\r\n"))
        await w.drain()
        await asyncio.sleep(1)

    srv = await Server(handler).start()
    try:
        with pytest.raises(H1Error, match="'gzip'-encoded"):
            await pool.request(b"POST", srv.url(), {}, b"{}")
        assert b"accept-encoding: identity\r\n" in srv.requests[0]
    finally:
        await srv.stop()


async def test_nothing_listening_is_an_error(pool: Pool) -> None:
    srv = await Server(lambda r, w: asyncio.sleep(0)).start()
    await srv.stop()
    await asyncio.sleep(0.05)
    with pytest.raises(H1Error, match="could not connect"):
        await pool.request(b"POST", srv.url(), {}, b"{}")


async def test_a_cancelled_read_closes_the_connection(pool: Pool) -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
        await w.drain()
        await r.read()  # until the client closes

    srv = await Server(handler).start()
    try:
        resp = await pool.request(b"POST", srv.url(), {}, b"{}")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(resp.read(), 0.2)
        resp2 = await pool.request(b"POST", srv.url(), {}, b"{}")  # not the half-read one
        resp2.close()
        assert srv.connections == 2
    finally:
        await srv.stop()


async def test_a_slow_reader_pauses_the_socket_and_gets_everything(pool: Pool) -> None:
    """8 MB arrive while nobody reads: the client stops reading at its high-water mark, and
    resumes as the body is taken, so nothing is lost and memory stays bounded."""
    block = b"x" * 65536
    blocks = 128

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await srv.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(block) * blocks))
        for _ in range(blocks):
            w.write(block)
            await w.drain()

    srv = await Server(handler).start()
    try:
        resp = await pool.request(b"POST", srv.url(), {}, b"{}")
        await asyncio.sleep(0.3)
        got = 0
        while chunk := await resp.next_chunk():
            assert len(chunk) <= 4 * 2**20
            got += len(chunk)
        assert got == len(block) * blocks
        resp.release()
    finally:
        await srv.stop()


def test_targets_and_header_injection() -> None:
    t = target("https://api.example.com/v1/chat/completions?x=1")
    assert (t.host, t.port, t.path, t.host_header) == (
        "api.example.com", 443, b"/v1/chat/completions?x=1", b"api.example.com")
    assert target("http://[::1]:8080/v1").host_header == b"[::1]:8080"
    with pytest.raises(ValueError):
        target("ftp://example.com/")


async def test_header_with_a_line_break_is_refused(pool: Pool) -> None:
    with pytest.raises(ValueError, match="line break"):
        await pool.request(b"POST", "http://127.0.0.1:9/v1", {"x": "a\r\nevil: 1"}, b"")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (key, cert)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


async def test_tls_with_a_trusted_certificate(pool: Pool, certificate: tuple[Path, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS to a server whose self-signed certificate is made trusted through SSL_CERT_FILE,
    the standard way to add a private CA; an untrusted one is refused."""
    key, cert = certificate
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    srv: Server
    srv = await Server(lambda r, w: echo_forever(srv, r, w)).start(tls)
    try:
        with pytest.raises(H1Error, match="could not connect"):
            await Pool().request(b"POST", srv.url("https"), {}, b"1")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        resp = await pool.request(b"POST", srv.url("https"), {}, b"1")
        assert await resp.read() == b'{"echo":1}'
        assert await (await pool.request(b"POST", srv.url("https"), {}, b"2")).read() \
            == b'{"echo":2}'
        assert srv.connections == 1
    finally:
        await srv.stop()
