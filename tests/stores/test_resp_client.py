"""The budget store's Redis client (gateway/stores/resp.py) against a real Redis.

Replies must reach the right caller when many calls share the connection; a flushed script
cache, a killed connection, a password and a database number must all just work; a Redis that
stops answering must fail calls within the timeout, not queue them.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.stores.resp import RedisReplyError, RedisUnavailable, RespClient, parse_url
from tests.fakes.freezable_proxy import FreezableProxy
from tests.services import free_port


def test_urls() -> None:
    t = parse_url("redis://:s3cret@cache.internal:6380/4")
    assert (t.host, t.port, t.db, t.username, t.password, t.tls) == (
        "cache.internal", 6380, 4, None, "s3cret", False)
    t = parse_url("rediss://gw:p%40ss@redis.example.com")
    assert (t.host, t.port, t.db, t.username, t.password, t.tls) == (
        "redis.example.com", 6379, 0, "gw", "p@ss", True)
    t = parse_url("unix:///run/redis.sock?db=2")
    assert (t.path, t.db) == ("/run/redis.sock", 2)
    with pytest.raises(ValueError, match="not a redis URL"):
        parse_url("http://127.0.0.1:6379")


async def test_concurrent_calls_get_their_own_replies(redis_url: str, redis_prefix: str) -> None:
    client = RespClient(redis_url, timeout_s=2.0)
    try:
        keys = [f"{redis_prefix}k{i}" for i in range(300)]
        await asyncio.gather(*(client.call("SET", k, f"v{i}") for i, k in enumerate(keys)))
        got = await asyncio.gather(*(client.call("GET", k) for k in keys))
        assert got == [f"v{i}" for i in range(300)]
        with pytest.raises(RedisReplyError, match="WRONGTYPE"):
            await client.call("HGET", keys[0], "field")
        assert await client.call("GET", keys[1]) == "v1"  # the error did not shift the replies
    finally:
        await client.close()


async def test_script_cache_flushed_and_connection_killed(redis_url: str,
                                                          redis_prefix: str) -> None:
    client = RespClient(redis_url, timeout_s=2.0)
    admin = RespClient(redis_url, timeout_s=2.0)
    script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    key = f"{redis_prefix}n"
    try:
        assert await client.evalsha(script, [key], [2]) == 2
        await admin.call("SCRIPT", "FLUSH")
        assert await client.evalsha(script, [key], [3]) == 5  # NOSCRIPT: sent in full again
        client_id = await client.call("CLIENT", "ID")
        await admin.call("CLIENT", "KILL", "ID", client_id)
        for _ in range(50):  # the kill reaches the client asynchronously
            try:
                assert await client.evalsha(script, [key], [1]) >= 6
                break
            except RedisUnavailable:
                await asyncio.sleep(0.02)
        assert await client.call("CLIENT", "ID") != client_id  # a new connection
    finally:
        await client.close()
        await admin.close()


async def test_a_frozen_redis_fails_calls_within_the_timeout(redis_url: str) -> None:
    proxy = FreezableProxy(redis_url)
    await proxy.start()
    client = RespClient(proxy.url, timeout_s=0.3)
    try:
        assert await client.call("PING") == "PONG"
        with proxy.frozen():
            t0 = time.monotonic()
            results = await asyncio.gather(*(client.call("PING") for _ in range(20)),
                                           return_exceptions=True)
            assert time.monotonic() - t0 < 1.5
            assert all(isinstance(r, RedisUnavailable) for r in results), results
        assert await client.call("PING") == "PONG"  # reconnected once thawed
    finally:
        await client.close()
        await proxy.stop()


@pytest.fixture
def password_redis() -> Iterator[str]:
    """A throwaway redis-server that requires a password (not the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on PATH")
    root = Path(tempfile.mkdtemp(prefix="gw-test-redis-auth-"))
    password = secrets.token_hex(8)
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root), "--requirepass", password],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                subprocess.run(["redis-cli", "-p", str(port), "-a", password, "--no-auth-warning",
                                "PING"], check=True, capture_output=True, timeout=2)
                break
            except (subprocess.CalledProcessError, FileNotFoundError):
                time.sleep(0.05)
        yield f"redis://:{password}@127.0.0.1:{port}/3"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


async def test_password_and_database(password_redis: str) -> None:
    client = RespClient(password_redis, timeout_s=2.0)
    try:
        await client.call("SET", "k", "in-db-3")
        info = await client.call("CLIENT", "INFO")
        assert " db=3 " in info
    finally:
        await client.close()
    wrong = RespClient(password_redis.replace("://:", "://:wrong"), timeout_s=2.0)
    with pytest.raises(RedisUnavailable, match="AUTH refused"):
        await wrong.call("PING")
    await wrong.close()
