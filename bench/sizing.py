"""Store load per request, for the README's sizing guide: Redis commands and PostgreSQL writes.

Starts a throwaway ``redis-server`` (so ``INFO commandstats`` counts only the gateway's calls),
a fresh database on a PostgreSQL server, the benchmark's fake upstream and one gateway process
configured like a production team (Redis budgets with a USD budget and rpm/tpm limits,
PostgreSQL records). After a warm-up it sends a known number of requests of each kind and reads,
around each batch: Redis ``INFO commandstats`` (and MONITOR over a sample, to tell round trips
from the commands the budget scripts run), ``pg_stat_database`` of the gateway's database and
the WAL position; then the ``requests`` table's size per row. Last, it holds ``--streams`` slow
streams open at once (a second fake upstream sends 4 chunks a second) and reads the gateway's
resident memory and CPU time: memory per open stream and CPU per streamed chunk.

    .venv/bin/python bench/sizing.py [--requests 2000] [--concurrency 16] [--streams 1000]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

The WAL figure is the whole cluster's: run it on a PostgreSQL server nothing else writes to.
This script imports nothing from ``gateway``: it drives the program from outside, like a user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import redis
import yaml

BENCH = Path(__file__).resolve().parent
KEY = "sk-sizing"
STREAM_CHUNKS, STREAM_DELAY_MS = 60, 250  # slow streams: 15 s each, 4 chunks a second
KINDS = {
    "chat": ("/v1/chat/completions", {"model": "chat", "max_tokens": 64,
                                      "messages": [{"role": "user", "content": "hello there"}]}),
    "stream": ("/v1/chat/completions", {"model": "chat", "max_tokens": 64, "stream": True,
                                        "messages": [{"role": "user", "content": "hello"}]}),
    "embeddings": ("/v1/embeddings", {"model": "embed", "input": "some text to embed"}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def process(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def settings(redis_url: str, database_url: str, upstream: str, slow: str) -> dict[str, Any]:
    return {
        "server": {"admin_keys": ["sk-sizing-admin"]},
        "stores": {"budgets": redis_url, "logs": database_url},
        "models": [
            {"name": "chat", "provider": "openai", "api_base": upstream, "api_key": "sk-x",
             "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}},
            {"name": "embed", "provider": "openai", "api_base": upstream, "api_key": "sk-x",
             "price": {"input_per_mtok": 0.02, "output_per_mtok": 0.0}},
            {"name": "slow", "provider": "openai", "api_base": slow, "api_key": "sk-x",
             "timeout_s": 120, "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}},
        ],
        "teams": [{"name": "sizing", "keys": [KEY], "budget": {"usd": 1_000_000, "period": "month"},
                   "limits": {"rpm": 10_000_000, "tpm": 1_000_000_000}}],
    }


async def fire(url: str, kind: str, n: int, concurrency: int) -> int:
    """``n`` requests of ``kind``; the number answered 200 (streams read to the end)."""
    path, body = KINDS[kind]
    data = orjson.dumps(body)
    todo = iter(range(n))
    ok = 0
    async with aiohttp.ClientSession() as http:
        async def worker() -> None:
            nonlocal ok
            for _ in todo:
                async with http.post(url + path, data=data,
                                     headers={"authorization": f"Bearer {KEY}"}) as r:
                    await r.read()
                    ok += r.status == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


class Stats:
    """What the two stores have done so far."""

    def __init__(self, rds: redis.Redis, conn: asyncpg.Connection, db: str) -> None:
        self.rds, self.conn, self.db = rds, conn, db

    async def take(self) -> dict[str, Any]:
        commands = {k.removeprefix("cmdstat_"): (v["calls"], v["usec"])
                    for k, v in self.rds.info("commandstats").items()}
        commands.pop("info", None)
        pg = await self.conn.fetchrow(
            "SELECT xact_commit, tup_inserted, pg_current_wal_lsn() AS lsn "
            "FROM pg_stat_database WHERE datname = $1", self.db)
        rows = await self.conn.fetchval("SELECT count(*) FROM requests")
        return {"redis": commands, "commits": pg["xact_commit"], "inserted": pg["tup_inserted"],
                "lsn": pg["lsn"], "rows": rows}

    async def wal_bytes(self, a: str, b: str) -> int:
        return int(await self.conn.fetchval("SELECT pg_wal_lsn_diff($1, $2)", b, a))


async def monitored(url: str, kind: str, rds: redis.Redis, concurrency: int,
                    n: int = 200) -> tuple[float, float]:
    """(round trips, commands run inside scripts) per request, counted with MONITOR over ``n``
    requests: MONITOR shows a script's own commands with the source ``lua``."""
    lines: list[str] = []
    stop = False

    def watch() -> None:
        with rds.monitor() as m:
            for event in m.listen():
                if stop and event["command"].startswith("PING"):
                    return
                lines.append(event["client_address"])

    watcher = asyncio.get_running_loop().run_in_executor(None, watch)
    await asyncio.sleep(0.3)
    lines.clear()
    await fire(url, kind, n, concurrency)
    stop = True
    await asyncio.sleep(0.5)  # settles land just after the answers
    redis.Redis(connection_pool=rds.connection_pool).ping()
    await watcher
    inner = sum(1 for a in lines if a == "lua")
    return (len(lines) - inner - 1) / n, inner / n


async def wait_rows(conn: asyncpg.Connection, expected: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while await conn.fetchval("SELECT count(*) FROM requests") < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("the records did not all arrive")
        await asyncio.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def open_streams(url: str, pid: int, count: int) -> None:
    """Memory per open stream, CPU per streamed chunk: ``count`` slow streams at once."""
    body = orjson.dumps({"model": "slow", "stream": True, "max_tokens": 100,
                         "messages": [{"role": "user", "content": "hi"}]})
    idle = rss_mb(pid)
    started = 0
    all_started = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=STREAM_CHUNKS * STREAM_DELAY_MS / 1000 + 60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        async def one() -> None:
            nonlocal started
            async with http.post(url + "/v1/chat/completions", data=body,
                                 headers={"authorization": f"Bearer {KEY}"}) as r:
                first = True
                async for _ in r.content.iter_any():
                    if first:
                        first = False
                        started += 1
                        if started == count:
                            all_started.set()

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.wait_for(all_started.wait(), 60)
        await asyncio.sleep(2)
        rss, cpu0, t0 = rss_mb(pid), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(5)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        await asyncio.gather(*tasks)
    per_chunk_us = cpu / (count * 1000 / STREAM_DELAY_MS) * 1e6
    print(f"\n{count} open streams at {1000 / STREAM_DELAY_MS:.0f} chunks/s each: resident "
          f"memory {idle:.0f} -> {rss:.0f} MB ({(rss - idle) * 1024 / count:.0f} KB per open "
          f"stream), CPU {cpu * 100:.0f}% of a core ({per_chunk_us:.0f} µs per chunk relayed)")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(args: argparse.Namespace, work: Path) -> None:
    admin = await asyncpg.connect(args.database_url)
    db = f"gw_sizing_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{db}"')
    database_url = args.database_url.rsplit("/", 1)[0] + f"/{db}"
    redis_port, up_port, slow_port, gw_port = free_port(), free_port(), free_port(), free_port()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(process(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(work)], work / "redis.log"))
            stack.enter_context(process(
                [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(up_port),
                 "--chunks", "20"], work / "upstream.log"))
            stack.enter_context(process(
                [sys.executable, str(BENCH / "fake_upstream.py"), "--port", str(slow_port),
                 "--chunks", str(STREAM_CHUNKS), "--chunk-delay-ms", str(STREAM_DELAY_MS)],
                work / "slow-upstream.log"))
            cfg = work / "gateway.yaml"
            cfg.write_text(yaml.safe_dump(settings(f"redis://127.0.0.1:{redis_port}/0",
                                                   database_url,
                                                   f"http://127.0.0.1:{up_port}/v1",
                                                   f"http://127.0.0.1:{slow_port}/v1")))
            gw = stack.enter_context(process(
                [sys.executable, "-m", "gateway", "serve", "--config", str(cfg),
                 "--port", str(gw_port)], work / "gateway.log"))
            url = f"http://127.0.0.1:{gw_port}"
            wait_http(url + "/readyz")
            wait_http(f"http://127.0.0.1:{up_port}/healthz")
            wait_http(f"http://127.0.0.1:{slow_port}/healthz")
            await report(args, url, gw.pid, redis_port, database_url, db)
            await open_streams(url, gw.pid, args.streams)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


async def report(args: argparse.Namespace, url: str, pid: int, redis_port: int,
                 database_url: str, db: str) -> None:
    rds = redis.Redis(port=redis_port)
    conn = await asyncpg.connect(database_url)
    stats = Stats(rds, conn, db)
    total = 0
    for kind in KINDS:  # warm-up: schema, caches, pools
        total += await fire(url, kind, 50, 4)
    await wait_rows(conn, total)
    print("| kind | requests | Redis round trips / request | commands run by scripts / request "
          "| Redis script µs / request | PG commits / request | PG rows / request | "
          "WAL bytes / request |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in KINDS:
        before = await stats.take()
        ok = await fire(url, kind, args.requests, args.concurrency)
        total += args.requests
        trips, inner = await monitored(url, kind, rds, args.concurrency)
        total += 200
        await wait_rows(conn, total)
        # Backends publish their statistics when idle, at least 10 s apart (PostgreSQL 15+).
        await asyncio.sleep(11)
        after = await stats.take()
        zero = (0, 0)
        delta = {c: (after["redis"][c][0] - before["redis"].get(c, zero)[0],
                     after["redis"][c][1] - before["redis"].get(c, zero)[1])
                 for c in after["redis"]}
        n = args.requests + 200
        usec = delta.get("evalsha", zero)[1]  # a script's time includes its commands'
        wal = await stats.wal_bytes(before["lsn"], after["lsn"])
        print(f"| {kind} | {ok} | {trips:.2f} | {inner:.1f} | {usec / n:.0f} | "
              f"{(after['commits'] - before['commits']) / n:.3f} | "
              f"{(after['rows'] - before['rows']) / n:.2f} | {wal / n:.0f} |")
    await conn.execute("VACUUM ANALYZE requests")
    size = await conn.fetchrow(
        "SELECT pg_total_relation_size('requests') AS total, pg_relation_size('requests') AS heap,"
        " (SELECT avg(pg_column_size(r.*)) FROM requests r) AS tuple, count(*) AS n "
        "FROM requests")
    per_row = size["total"] / size["n"]
    print(f"\nrequests table: {size['n']} rows, {size['total'] / 1e6:.2f} MB with indexes, "
          f"{per_row:.0f} bytes per row with indexes ({size['heap'] / size['n']:.0f} heap, "
          f"{size['tuple']:.0f} tuple); 1M records/day = {per_row * 1e6 / 1e9:.2f} GB/day")
    print(f"gateway resident memory after the run: {rss_mb(pid):.0f} MB (one worker)")
    await conn.close()
    rds.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-sizing-") as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
