"""Overspend under a race, at 1, 3 and 5 replicas, and the latency the Redis budget store adds.

Starts the fake upstream (``bench/fake_upstream.py``) and N real gateway processes
(``python -m gateway serve``) on one Redis, then fires many more requests than the budget
allows, all at once, round-robin over the replicas. The overspend factor is the cost actually
served (output tokens the clients received x the price, cross-checked with the store's
``spent_usd``) divided by the budget: with honest estimates it must never exceed 1.0, and it
should stay above 0.9 (the budget stays usable). The ``-under`` modes ask for half the tokens the
upstream sends, to show the worst case when estimates are wrong. A second measurement compares
one replica on ``memory://`` with one on ``redis://`` under the same steady load: the difference
in percentiles is what the shared store costs.

This script imports nothing from ``gateway``: it drives the program from outside, like a user.

    .venv/bin/python bench/overspend.py [--replicas 1 3 5] [--trials 3] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis
import yaml

HERE = Path(__file__).resolve().parent
ADMIN = "sk-bench-admin"
TOKENS = 20  # what the fake upstream answers, and what clients ask for as max_tokens
PRICE_OUT = 1000.0  # USD per million output tokens: 1000 micro-dollars per token
PER_REQUEST = TOKENS * 1000  # micro-dollars


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: not ready after {timeout_s}s")


@contextlib.contextmanager
def process(cmd: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    try:
        wait_http(ready_url, proc)
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def config(budgets_url: str, prefix: str, upstream: str, teams: list[dict[str, Any]],
           logs: str) -> dict[str, Any]:
    return {
        "server": {"admin_keys": [ADMIN]},
        "stores": {"budgets": budgets_url, "budget_key_prefix": prefix, "logs": logs,
                   "budget_timeout_s": 2.0},
        "models": [{"name": "m", "provider": "openai", "model": "bench-model",
                    "api_base": upstream, "api_key": "sk-fake",
                    "price": {"input_per_mtok": 0.0, "output_per_mtok": PRICE_OUT}}],
        "teams": teams,
    }


@contextlib.contextmanager
def replicas(n: int, cfg: dict[str, Any], workdir: Path) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        urls = []
        for i in range(n):
            port = free_port()
            path = workdir / f"gateway-{port}.yaml"
            path.write_text(yaml.safe_dump({**cfg, "stores": {
                **cfg["stores"], "logs": f"sqlite:///{workdir}/logs-{port}.db"}}))
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(process(
                [sys.executable, "-m", "gateway", "serve", "--config", str(path),
                 "--port", str(port)], url + "/healthz", workdir / f"gateway-{i}-{port}.log"))
            urls.append(url)
        yield urls


#: mode -> (max_tokens the client asks for, streamed). The fake always answers TOKENS tokens, so
#: the "-under" modes show what happens when the estimate is half the truth.
MODES = {"plain": (TOKENS, False), "stream": (TOKENS, True),
         "plain-under": (TOKENS // 2, False), "stream-under": (TOKENS // 2, True)}


@dataclass
class Shot:
    status: int
    code: str | None
    seconds: float
    tokens: int = 0  # output tokens the client received


async def fire(urls: list[str], key: str, n: int, at_once: int, *, stream: bool,
               max_tokens: int = TOKENS) -> list[Shot]:
    gate = asyncio.Semaphore(at_once)
    body = orjson.dumps({"model": "m", "max_tokens": max_tokens, "stream": stream,
                         "messages": [{"role": "user", "content": "go"}]})
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=at_once * 2)) as http:
        async def one(i: int) -> Shot:
            async with gate:
                t = time.perf_counter()
                try:
                    async with http.post(urls[i % len(urls)] + "/v1/chat/completions",
                                         data=body, headers=headers) as r:
                        raw = await r.read()
                        status = r.status
                except aiohttp.ClientError as exc:  # reported, not fatal: it is a finding
                    return Shot(0, type(exc).__name__, time.perf_counter() - t)
                code, tokens = None, 0
                if status != 200:
                    code = orjson.loads(raw).get("error", {}).get("code")
                elif stream:
                    tokens = raw.count(b"tok")  # the fake's every content token is "tok"
                    if not raw.endswith(b"data: [DONE]\n\n"):
                        code = "incomplete_stream"
                else:
                    tokens = orjson.loads(raw)["usage"]["completion_tokens"]
                return Shot(status, code, time.perf_counter() - t, tokens)
        return await asyncio.gather(*(one(i) for i in range(n)))


async def budget_status(url: str, team: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{url}/admin/teams/{team}/budget",
            headers={"authorization": f"Bearer {ADMIN}"}) as r:
        data: dict[str, Any] = await r.json()
        return data


async def race(urls: list[str], team: str, args: argparse.Namespace, mode: str
               ) -> dict[str, Any]:
    max_tokens, stream = MODES[mode]
    shots = await fire(urls, f"sk-{team}", args.requests, args.concurrency, stream=stream,
                       max_tokens=max_tokens)
    served = sum(1 for s in shots if s.status == 200 and s.code is None)
    served_micros = sum(s.tokens for s in shots) * int(PRICE_OUT)
    other = sorted({f"{s.status} {s.code}" for s in shots
                    if s.status != 200 and s.code != "budget_exceeded"})
    st = await budget_status(urls[-1], team)
    budget = args.budget_requests * PER_REQUEST
    return {"served": served, "factor": served_micros / budget,
            "spent_factor": round(st["spent_usd"] * 1e6) / budget,
            "reserved_after_usd": st["reserved_usd"], "unexpected": other}


def percentiles(xs: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(xs, n=100, method="inclusive")
    return {"p50_ms": qs[49] * 1e3, "p90_ms": qs[89] * 1e3, "p99_ms": qs[98] * 1e3,
            "mean_ms": statistics.fmean(xs) * 1e3}


async def latency(by_store: dict[str, list[str]], args: argparse.Namespace
                  ) -> dict[str, dict[str, float]]:
    """Both gateways run side by side; batches alternate between them, so load drift on the
    machine hits both alike instead of whichever happened to run second."""
    samples: dict[str, list[float]] = {store: [] for store in by_store}
    for urls in by_store.values():
        await fire(urls, "sk-lat", 200, args.latency_concurrency, stream=False)  # warm-up
    rounds = 10
    for _ in range(rounds):
        for store, urls in by_store.items():
            shots = await fire(urls, "sk-lat", max(1, args.latency_requests // rounds),
                               args.latency_concurrency, stream=False)
            bad = [s for s in shots if s.status != 200]
            if bad:
                raise RuntimeError(f"latency run: {len(bad)} failures, e.g. {bad[0]}")
            samples[store] += [s.seconds for s in shots]
    return {store: percentiles(xs) for store, xs in samples.items()}


def teams(args: argparse.Namespace) -> list[dict[str, Any]]:
    usd = args.budget_requests * PER_REQUEST / 1e6
    out = [{"name": f"race-{mode}-{t}", "keys": [f"sk-race-{mode}-{t}"],
            "budget": {"usd": usd, "period": "month"}}
           for mode in args.modes for t in range(args.trials)]
    out.append({"name": "lat", "keys": ["sk-lat"], "budget": {"usd": 1e6, "period": "month"}})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, nargs="*", default=[1, 3, 5],
                    help="replica counts to race (none: skip the races)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=40)
    ap.add_argument("--budget-requests", type=int, default=30)
    ap.add_argument("--latency-requests", type=int, default=4000, help="0 skips the latency run")
    ap.add_argument("--latency-concurrency", type=int, default=8)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                          "redis://127.0.0.1:6379/15"))
    ap.add_argument("--out", type=Path, default=HERE / "out" / "overspend-latest.md")
    ap.add_argument("--keep-logs", type=Path, help="write process logs here instead of a temp dir")
    args = ap.parse_args(argv)
    redis.Redis.from_url(args.redis_url).ping()
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                               "races": [], "latency": {}}
    with tempfile.TemporaryDirectory(prefix="overspend-") as tmp:
        workdir = args.keep_logs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        up_port = free_port()
        upstream = f"http://127.0.0.1:{up_port}/v1"
        with process([sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up_port),
                      "--chunks", str(TOKENS)], f"http://127.0.0.1:{up_port}/healthz",
                     workdir / "upstream.log"):
            for n in args.replicas:
                prefix = f"overspend-{secrets.token_hex(4)}"
                cfg = config(args.redis_url, prefix, upstream, teams(args), "")
                with replicas(n, cfg, workdir) as urls:
                    for mode in args.modes:
                        for t in range(args.trials):
                            r = asyncio.run(race(urls, f"race-{mode}-{t}", args, mode))
                            results["races"].append({"replicas": n, "mode": mode, "trial": t,
                                                     **r})
                            print(f"replicas={n} {mode:6} trial={t}: {r}", flush=True)
                _cleanup(args.redis_url, prefix)
            if args.latency_requests > 0:
                prefix = f"overspend-{secrets.token_hex(4)}"
                with replicas(1, config("memory://", prefix, upstream, teams(args), ""),
                              workdir) as mem, \
                        replicas(1, config(args.redis_url, prefix, upstream, teams(args), ""),
                                 workdir) as red:
                    results["latency"] = asyncio.run(latency({"memory": mem, "redis": red},
                                                             args))
                    print(f"latency: {results['latency']}", flush=True)
                _cleanup(args.redis_url, prefix)
    report = render(results)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    worst = max((r["factor"] for r in results["races"] if not r["mode"].endswith("-under")),
                default=0.0)
    return 0 if worst <= 1.0 else 1


def _cleanup(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def render(results: dict[str, Any]) -> str:
    a = results["args"]
    lines = [
        "# Budget overspend and Redis store latency",
        "",
        f"{a['requests']} requests, {a['concurrency']} at once, round-robin over the replicas, "
        f"against a budget that fits {a['budget_requests']}; {a['trials']} trials per row. "
        "Factor = cost of the output tokens clients received / budget (<= 1.00: no overspend; "
        ">= 0.90: the budget stays usable). In the `-under` modes clients ask for half the "
        "tokens the upstream then sends (an upstream ignoring max_tokens, or a model default "
        "set too low): non-streamed answers can then overspend by what the requests in flight "
        "underestimated; streams are metered, topped up and cut with finish_reason length.",
        "",
        "| replicas | mode | served (min-max) | factor max | factor min | store spent / budget "
        "| reserved after | other errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in results["races"]:
        rows.setdefault((r["replicas"], r["mode"]), []).append(r)
    for (n, mode), rs in sorted(rows.items()):
        served = [r["served"] for r in rs]
        lines.append(
            f"| {n} | {mode} | {min(served)}-{max(served)} | {max(r['factor'] for r in rs):.3f} "
            f"| {min(r['factor'] for r in rs):.3f} "
            f"| {max(r['spent_factor'] for r in rs):.3f} "
            f"| {max(r['reserved_after_usd'] for r in rs)} "
            f"| {sorted({u for r in rs for u in r['unexpected']}) or '-'} |")
    lat = results["latency"]
    if lat:
        lines += ["", f"Latency, one replica each, {a['latency_requests']} non-streamed requests "
                  f"per store in alternating batches, {a['latency_concurrency']} at once "
                  "(client-side, ms):", "",
                  "| store | p50 | p90 | p99 | mean |", "| --- | --- | --- | --- | --- |"]
        for store, p in lat.items():
            lines.append(f"| {store} | {p['p50_ms']:.2f} | {p['p90_ms']:.2f} "
                         f"| {p['p99_ms']:.2f} | {p['mean_ms']:.2f} |")
        if "memory" in lat and "redis" in lat:
            d = {k: lat["redis"][k] - lat["memory"][k] for k in lat["redis"]}
            lines.append(f"| added by redis | {d['p50_ms']:+.2f} | {d['p90_ms']:+.2f} "
                         f"| {d['p99_ms']:+.2f} | {d['mean_ms']:+.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
