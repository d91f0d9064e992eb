"""CPU per request of the upstream HTTP client: the gateway's own (gateway/providers/h1.py)
against aiohttp, one request at a time to the fake upstream, in this process.

    python bench/client_cost.py [--requests 20000]

The evidence for the gateway's choice of client: the figure is the client's whole cost per call
(building the request, the pool, parsing the answer, reading the body), measured with
``time.process_time`` while the fake upstream runs in its own process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import systems

from gateway.providers.h1 import Pool

BODY = orjson.dumps({"model": "bench-model", "max_tokens": 16,
                     "messages": [{"role": "user", "content": "Say hello to the benchmark."}]})
HEADERS = {"content-type": "application/json", "authorization": "Bearer x"}


async def with_h1(url: str, n: int) -> tuple[float, float]:
    pool = Pool()
    t0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        resp = await pool.request(b"POST", url, HEADERS, BODY)
        orjson.loads(await resp.read())
    out = time.process_time() - t0, time.perf_counter() - w0
    pool.close()
    return out


async def with_aiohttp(url: str, n: int) -> tuple[float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        t0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            async with session.post(url, data=BODY, headers=HEADERS) as resp:
                orjson.loads(await resp.read())
        return time.process_time() - t0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    a = ap.parse_args()
    import uvloop

    with tempfile.TemporaryDirectory(prefix="gw-client-") as tmp:
        up = systems.start_upstream(Path(tmp), 0, 20, 0)
        url = up.base_url + "/chat/completions"
        clients: list[tuple[str, Callable[[str, int], Awaitable[tuple[float, float]]]]] = [
            ("h1", with_h1), ("aiohttp", with_aiohttp)]
        try:
            for _ in range(2):  # twice, alternating: the machine's speed drifts
                for name, run in clients:
                    cpu, wall = uvloop.run(run(url, a.requests))
                    print(f"{name:8s} {cpu / a.requests * 1e6:6.1f} µs CPU/request, "
                          f"{wall / a.requests * 1e6:6.1f} µs wall/request", flush=True)
        finally:
            systems.stop_proc(up.proc)


if __name__ == "__main__":
    main()
