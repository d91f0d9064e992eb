"""The load scenarios and the code that drives one of them against one system.

Plain POSTs (chat, embeddings) are driven by wrk with ``wrk/post.lua``; streams by ``sse_load.py``
because wrk cannot see the first byte of a body. Both run as child processes, so the runner only
watches: it snapshots the CPU of the system under test (and of the fake upstream, to prove it was
not the bottleneck) before and after, and samples RSS while the load runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procstat
from systems import BENCH, PYTHON, System

PROMPT = (
    "You are reviewing a short design note for a caching layer. Summarise the trade-offs "
    "between write-through and write-back caching for a read-heavy service, mention how "
    "invalidation interacts with replication lag, and suggest two metrics to watch in "
    "production. Keep the answer under one hundred words and use plain language."
)


@dataclass(frozen=True)
class Load:
    """One scenario: what is sent, how many at once, and which tool sends it."""

    name: str
    path: str
    body: dict[str, Any]
    concurrency: int
    tool: str  # "wrk" | "sse"
    #: Mean pause (exponential) of each connection before each request; 0 = closed loop, as fast
    #: as the system answers. With a pause the offered rate is fixed (about concurrency /
    #: think time) and below every fast system's capacity, so latency shows what a system adds
    #: to a request rather than how long requests queue for a saturated CPU.
    think_ms: float = 0.0

    @property
    def offered_rps(self) -> float | None:
        return 1000 * self.concurrency / self.think_ms if self.think_ms else None


def _chat(stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "bench-model", "max_tokens": 64,
        "messages": [{"role": "system", "content": "You are a concise assistant."},
                     {"role": "user", "content": PROMPT}],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


LOADS: dict[str, Load] = {load.name: load for load in (
    Load("chat-c1", "/chat/completions", _chat(), 1, "wrk"),
    Load("chat-c16", "/chat/completions", _chat(), 16, "wrk"),
    Load("chat-c64", "/chat/completions", _chat(), 64, "wrk"),
    Load("stream-c1", "/chat/completions", _chat(stream=True), 1, "sse"),
    Load("stream-c16", "/chat/completions", _chat(stream=True), 16, "sse"),
    Load("embed-c16", "/embeddings", {"model": "bench-embed", "input": PROMPT}, 16, "wrk"),
    # Latency under concurrency without saturation: ~500 requests/s and ~200 streams/s offered.
    Load("chat-c64-paced", "/chat/completions", _chat(), 64, "wrk", think_ms=128.0),
    Load("stream-c16-paced", "/chat/completions", _chat(stream=True), 16, "sse", think_ms=80.0),
)}


def _files(workdir: Path, system: System, load: Load) -> tuple[Path, Path]:
    body = workdir / f"body-{load.name}.json"
    body.write_text(json.dumps(load.body))
    headers = workdir / f"headers-{system.name}.txt"
    headers.write_text("".join(f"{k}: {v}\n" for k, v in system.headers.items()))
    return body, headers


def check_once(system: System, load: Load) -> str:
    """Send one request; return "" when the answer is a success of the right shape, else why not.

    Without this a system answering 401 or 404 at 20k req/s would look like the fastest one.
    """
    req = urllib.request.Request(
        system.base_url + load.path, data=json.dumps(load.body).encode(), method="POST",
        headers={"content-type": "application/json", **system.headers})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            data = r.read()
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read()[:200]!r}"
    except (urllib.error.URLError, OSError) as e:
        return f"request failed: {e}"
    if load.tool == "sse":
        return "" if b"data: [DONE]" in data else f"stream without [DONE]: {data[-200:]!r}"
    key = b'"embedding"' if "embeddings" in load.path else b'"choices"'
    return "" if key in data else f"unexpected body: {data[:200]!r}"


def _command(system: System, load: Load, duration: float, files: tuple[Path, Path]) -> list[str]:
    url = system.base_url + load.path
    if load.tool == "sse":
        return [PYTHON, str(BENCH / "sse_load.py"), "--url", url, "--body-file", str(files[0]),
                "--headers-file", str(files[1]), "--concurrency", str(load.concurrency),
                "--duration", str(duration), "--think-ms", str(load.think_ms)]
    return ["wrk", "-t1", f"-c{load.concurrency}", f"-d{max(1, round(duration))}s",
            "--timeout", "10s", "--latency", "-s", str(BENCH / "wrk" / "post.lua"), url]


def _run_tool(cmd: list[str], files: tuple[Path, Path], duration: float,
              sample: System, think_ms: float = 0.0) -> tuple[dict[str, Any], list[float]]:
    """Run one load tool to completion; sample the system's RSS every 0.5 s while it runs."""
    env = {**os.environ, "BENCH_BODY_FILE": str(files[0]), "BENCH_HEADERS_FILE": str(files[1]),
           "BENCH_THINK_MS": str(think_ms)}
    rss: list[float] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        deadline = time.monotonic() + duration + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if sample.pid:
                rss.append(procstat.Snapshot.take(sample.pid).rss_total)
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON ")), rss
    raise RuntimeError(f"{cmd[0]} printed no result: {err.decode(errors='replace')[-300:]}")


def _normalise(raw: dict[str, Any], tool: str) -> dict[str, Any]:
    """wrk and sse_load report differently; give both the same keys (latencies in ms)."""
    lat = raw["latency_us"]
    if tool == "wrk":
        seconds = raw["duration_us"] / 1e6
        errors = sum(raw["errors"].values())
        out = {"requests": raw["requests"], "rps": raw["requests"] / seconds, "errors": errors}
    else:
        out = {"requests": raw["requests"], "rps": raw["rps"], "errors": raw["errors"],
               "first_error": raw.get("first_error", "")}
        out |= {"ttfb_p50_ms": raw["ttfb_us"]["p50"] / 1e3,
                "ttfb_p99_ms": raw["ttfb_us"]["p99"] / 1e3}
    out |= {"p50_ms": lat["p50"] / 1e3, "p99_ms": lat["p99"] / 1e3}
    return out


def measure(system: System, load: Load, *, duration: float, warmup: float, workdir: Path,
            upstream: System) -> dict[str, Any]:
    """Warm up, then run ``load`` against ``system`` and return its figures (or why skipped)."""
    problem = check_once(system, load)
    if problem:
        return {"skipped": problem}
    files = _files(workdir, system, load)
    if warmup > 0:
        _run_tool(_command(system, load, warmup, files), files, warmup, system, load.think_ms)
    assert system.pid and upstream.pid
    before = procstat.Snapshot.take(system.pid)
    up_before = procstat.Snapshot.take(upstream.pid)
    machine0, tool0, t0 = (procstat.machine_busy_seconds(), procstat.children_cpu_seconds(),
                           time.monotonic())
    raw, rss = _run_tool(_command(system, load, duration, files), files, duration, system,
                         load.think_ms)
    wall = time.monotonic() - t0
    machine = procstat.machine_busy_seconds() - machine0
    tool = procstat.children_cpu_seconds() - tool0
    after = procstat.Snapshot.take(system.pid)
    up_after = procstat.Snapshot.take(upstream.pid)
    result = _normalise(raw, load.tool)
    cpu = procstat.cpu_between(before, after)
    up_cpu = procstat.cpu_between(up_before, up_after) if system is not upstream else 0.0
    result |= {
        "cpu_pct": 100 * cpu / wall,
        "cpu_ms_per_req": 1000 * cpu / result["requests"] if result["requests"] else None,
        "rss_load_mb": max(rss, default=after.rss_total),
        "upstream_cpu_pct": 100 * (up_cpu or cpu) / wall,
        "tool_cpu_pct": 100 * tool / wall,
        # Everything else on the machine (other people's tests...): the noise indicator.
        "other_cpu_pct": max(0.0, 100 * (machine - cpu - up_cpu - tool) / wall),
    }
    if result["errors"] > 0.01 * max(1, result["requests"]):
        result["invalid"] = f"{result['errors']} errors in {result['requests']} requests"
    return result
