"""A small async load client for SSE streams (and, at concurrency 1, for plain POSTs).

wrk cannot tell when the first byte of a stream arrives, so streamed scenarios use this client:
N workers each open a stream, note the time to the first body byte (TTFB) and to the end of the
stream, check it ended with ``data: [DONE]``, and start the next. It runs in its own process
(started by run.py) so its CPU never counts as the system under test's, with uvloop when
installed. Bounded by both ``--duration`` and ``--max-requests``; loopback URLs only.

Prints one line ``BENCH_JSON {...}`` with counts and latency percentiles in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


class Stats:
    """What all workers measured; lists are bounded by --max-requests."""

    def __init__(self) -> None:
        self.ttfb: list[float] = []
        self.total: list[float] = []
        self.errors = 0
        self.first_error = ""


@dataclass(frozen=True)
class Job:
    """The one request every worker repeats."""

    url: str
    body: bytes
    headers: dict[str, str]
    stream: bool


async def one(session: aiohttp.ClientSession, job: Job, stats: Stats) -> None:
    t0 = time.perf_counter()
    ttfb = 0.0
    tail = b""
    try:
        async with session.post(job.url, data=job.body, headers=job.headers) as resp:
            async for chunk in resp.content.iter_any():
                if not ttfb:
                    ttfb = time.perf_counter() - t0
                tail = (tail + chunk)[-64:]
            ok = resp.status == 200 and (not job.stream or b"[DONE]" in tail)
            if not ok and not stats.first_error:
                stats.first_error = f"status {resp.status}, tail {tail[-40:]!r}"
    except (aiohttp.ClientError, TimeoutError) as e:
        ok = False
        stats.first_error = stats.first_error or repr(e)
    if ok:
        stats.ttfb.append(ttfb * 1e6)
        stats.total.append((time.perf_counter() - t0) * 1e6)
    else:
        stats.errors += 1


async def run(job: Job, concurrency: int, duration: float, max_requests: int,
              think_ms: float = 0.0) -> dict[str, object]:
    stats = Stats()
    deadline = time.perf_counter() + duration
    budget = [max_requests]

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            if think_ms > 0:  # a fixed offered rate: see loads.Load.think_ms
                await asyncio.sleep(random.expovariate(1000 / think_ms))
                if time.perf_counter() >= deadline:
                    break
            await one(session, job, stats)

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(stats.total), "errors": stats.errors, "first_error": stats.first_error,
        "duration_s": elapsed, "rps": len(stats.total) / elapsed if elapsed else 0.0,
        "ttfb_us": {"p50": percentile(stats.ttfb, 50), "p99": percentile(stats.ttfb, 99)},
        "latency_us": {"p50": percentile(stats.total, 50), "p99": percentile(stats.total, 99),
                       "mean": sum(stats.total) / len(stats.total) if stats.total else 0.0},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--body-file", required=True)
    ap.add_argument("--headers-file")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--think-ms", type=float, default=0.0,
                    help="mean pause before each request (exponential); 0 = closed loop")
    a = ap.parse_args()
    if not (urlsplit(a.url).hostname or "").startswith("127."):
        sys.exit("sse_load sends traffic to 127.0.0.0/8 only")
    headers = {"content-type": "application/json"}
    if a.headers_file:
        for line in Path(a.headers_file).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip()] = value.strip()
    body = Path(a.body_file).read_bytes()
    job = Job(a.url, body, headers, bool(orjson.loads(body).get("stream")))
    coro = run(job, a.concurrency, a.duration, a.max_requests, a.think_ms)
    try:
        import uvloop
        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    print("BENCH_JSON " + orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
