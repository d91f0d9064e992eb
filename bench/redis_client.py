"""The budget store's Redis calls, one at a time: redis-py against the gateway's own client.

    python bench/redis_client.py [--url redis://127.0.0.1:6379/15] [-n 3000]

Runs the reserve and settle scripts back to back (what one request costs the budget store) with
redis-py (``redis.asyncio``, hiredis installed) and with ``gateway.stores.resp.RespClient``, and
prints wall time and this process's CPU per pair. The keys live under ``bench-rc:`` and are
deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from gateway.stores.budget_redis import _RESERVE, _SETTLE
from gateway.stores.resp import RespClient

Eval = Callable[[str, list[str], list[Any]], Awaitable[Any]]


def pair(run_script: Eval) -> Callable[[int], Awaitable[None]]:
    budget = "bench-rc:{t}:b:team:usd:d1"

    async def one(i: int) -> None:
        now = int(time.time() * 1e6)
        await run_script(_RESERVE, ["bench-rc:{t}:holds", "bench-rc:{t}:hexp", "bench-rc:{t}:cfg",
                                    budget], [f"h{i}", now, 30_000_000, 0, 1, 0, "reserve",
                                              10**12, 50, 0])
        await run_script(_SETTLE, ["bench-rc:{t}:holds", "bench-rc:{t}:hexp",
                                   f"bench-rc:{{t}}:m:done:h{i}", budget],
                         [f"h{i}", now, 30, 0, 1, 0, 60_000, "usd", 0])
    return one


async def timed(label: str, one: Callable[[int], Awaitable[None]], n: int) -> None:
    for i in range(200):
        await one(-i - 1)  # warm: connections, scripts loaded
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        await one(i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{label:28} {wall / n * 1e6:6.0f} µs wall, {cpu / n * 1e6:6.0f} µs CPU per pair")


async def main(url: str, n: int) -> None:
    py = aioredis.Redis.from_url(url, decode_responses=True)
    scripts = {s: py.register_script(s) for s in (_RESERVE, _SETTLE)}

    async def with_redis_py(script: str, keys: list[str], args: list[Any]) -> Any:
        return await scripts[script](keys=keys, args=args)

    own = RespClient(url, timeout_s=2.0)
    try:
        await timed("redis-py (redis.asyncio)", pair(with_redis_py), n)
        await timed("gateway RespClient", pair(own.evalsha), n)
    finally:
        keys = [k async for k in py.scan_iter(match="bench-rc:*")]
        if keys:
            await py.delete(*keys)
        await py.aclose()
        await own.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="redis://127.0.0.1:6379/15")
    ap.add_argument("-n", type=int, default=3000)
    a = ap.parse_args()
    try:
        import uvloop
        uvloop.run(main(a.url, a.n))
    except ImportError:
        asyncio.run(main(a.url, a.n))
    sys.exit(0)
