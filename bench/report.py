"""Turn one run's raw figures into markdown: targets with pass/fail, then one table per scenario.

Every table has one column per system measured in the same run (upstream direct, the bare
passthrough floor, the gateway variants, the peers), so a figure is never compared with one taken
on another day or under another load of the machine. "Added" latency is the system's percentile
minus the upstream-direct percentile of the same scenario, measured just before it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import loads

LABELS = {
    "upstream": "upstream direct", "bare": "bare passthrough", "gateway": "gateway",
    "gw-policy": "gateway +policy", "gw-redis": "gateway redis",
    "gw-redis-policy": "gateway redis +policy", "gw-w2": "gateway 2 workers",
    "litellm": "litellm proxy", "portkey": "portkey",
}

Results = dict[str, dict[str, dict[str, Any]]]  # load -> system -> figures


@dataclass(frozen=True)
class Target:
    """One goal from the benchmark issue: a measured value against a threshold."""

    name: str
    value: float | None
    threshold: float
    higher_is_better: bool
    unit: str
    how: str

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold
        return "PASS" if ok else "FAIL"

    def row(self) -> str:
        op = "≥" if self.higher_is_better else "≤"
        val = "—" if self.value is None else f"{self.value:.2f}{self.unit}"
        return f"| {self.name} | {val} | {op} {self.threshold:g}{self.unit} | {self.verdict} | " \
               f"{self.how} |"


def _get(results: Results, load: str, system: str, key: str) -> float | None:
    fig = results.get(load, {}).get(system, {})
    if "skipped" in fig or "invalid" in fig:
        return None
    value = fig.get(key)
    return float(value) if value is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _two_worker_ceiling(g: Any) -> str:
    """The most two workers could serve here: the machine's two cores divided by the CPU one
    request takes in the gateway (as one worker spends it), wrk and the fake upstream."""
    rps1, cpu1 = g("chat-c64", "gateway", "rps"), g("chat-c64", "gateway", "cpu_pct")
    rps2 = g("chat-c64", "gw-w2", "rps")
    helpers = [g("chat-c64", "gw-w2", k) for k in ("upstream_cpu_pct", "tool_cpu_pct")]
    if not (rps1 and cpu1 and rps2) or None in helpers:
        return ""
    per_request = cpu1 / rps1 + sum(h for h in helpers if h is not None) / rps2
    cores = os.cpu_count() or 2
    ceiling = 100 * cores / per_request / rps1
    return (f"; the cores' ceiling is {ceiling:.2f}× (CPU per request of gateway + wrk + "
            f"upstream against {cores} cores)")


def targets(results: Results, systems: dict[str, dict[str, Any]]) -> list[Target]:
    """The issue's targets, computed from this run only."""
    def g(load: str, system: str, key: str) -> float | None:
        return _get(results, load, system, key)

    idle = systems.get("gateway", {}).get("idle_rss_max_mb")
    return [
        Target("chat req/s at 16: gateway / bare", _ratio(
            g("chat-c16", "gateway", "rps"), g("chat-c16", "bare", "rps")), 0.5, True, "×",
            "chat-c16 req/s ratio"),
        Target("added p50, one at a time", _diff(
            g("chat-c1", "gateway", "p50_ms"), g("chat-c1", "upstream", "p50_ms")), 0.5, False,
            " ms", "chat-c1 p50 gateway − upstream direct"),
        Target("added p99 at 64 concurrent", _diff(
            g("chat-c64-paced", "gateway", "p99_ms"), g("chat-c64-paced", "upstream", "p99_ms")),
            10, False, " ms", "chat-c64-paced p99 gateway − upstream direct (64 connections, "
            "~500 req/s offered; saturated chat-c64 measures queueing, see Latency below)"),
        Target("streams/s at 16: gateway / bare", _ratio(
            g("stream-c16", "gateway", "rps"), g("stream-c16", "bare", "rps")), 0.5, True, "×",
            "stream-c16 streams/s ratio"),
        Target("added TTFB p50 (streams at 16)", _diff(
            g("stream-c16-paced", "gateway", "ttfb_p50_ms"),
            g("stream-c16-paced", "upstream", "ttfb_p50_ms")), 1, False, " ms",
            "stream-c16-paced TTFB p50 gateway − upstream direct (16 streams open, ~200/s "
            "offered)"),
        Target("added TTFB p50, one at a time", _diff(
            g("stream-c1", "gateway", "ttfb_p50_ms"), g("stream-c1", "upstream", "ttfb_p50_ms")),
            1, False, " ms", "stream-c1 (not saturated: no queueing in the figure)"),
        Target("2 workers / 1 worker req/s", _ratio(
            g("chat-c64", "gw-w2", "rps"), g("chat-c64", "gateway", "rps")), 1.7, True, "×",
            "chat-c64; on 2 cores shared with wrk and the upstream" + _two_worker_ceiling(g)),
        Target("idle RSS per worker", idle, 150, False, " MB",
               "largest gateway process after warm-up"),
        Target("Redis store adds over memory (p50)", _diff(
            g("chat-c1", "gw-redis", "p50_ms"), g("chat-c1", "gateway", "p50_ms")), 0.3, False,
            " ms", "chat-c1 p50 gateway redis − gateway memory"),
    ]


def _target(saved: dict[str, Any]) -> Target:
    return Target(**{k: v for k, v in saved.items() if k != "verdict"})


def targets_table(rows: list[Target]) -> str:
    head = "| target | measured | goal | result | how |\n| --- | --- | --- | --- | --- |\n"
    return head + "\n".join(t.row() for t in rows) + "\n"


def _pct(a: float | None, b: float | None) -> float | None:
    r = _ratio(a, b)
    return None if r is None else 100 * r


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


Metric = tuple[str, Callable[[dict[str, Any], dict[str, Any]], float | None], int]

_METRICS: list[Metric] = [
    ("req/s", lambda f, _u: f.get("rps"), 0),
    ("p50 ms", lambda f, _u: f.get("p50_ms"), 2),
    ("p99 ms", lambda f, _u: f.get("p99_ms"), 2),
    ("added p50 ms", lambda f, u: _diff(f.get("p50_ms"), u.get("p50_ms")), 2),
    ("added p99 ms", lambda f, u: _diff(f.get("p99_ms"), u.get("p99_ms")), 2),
    ("TTFB p50 ms", lambda f, _u: f.get("ttfb_p50_ms"), 2),
    ("added TTFB p50 ms", lambda f, u: _diff(f.get("ttfb_p50_ms"), u.get("ttfb_p50_ms")), 2),
    ("p50 over bare ms", lambda f, u: _diff(f.get("p50_ms"), u.get("bare_p50_ms")), 2),
    ("% of bare req/s", lambda f, u: _pct(f.get("rps"), u.get("bare_rps")), 0),
    ("CPU % (100 = 1 core)", lambda f, _u: f.get("cpu_pct"), 0),
    ("CPU ms / request", lambda f, _u: f.get("cpu_ms_per_req"), 3),
    ("RSS under load MB", lambda f, _u: f.get("rss_load_mb"), 0),
    ("fake upstream CPU %", lambda f, _u: f.get("upstream_cpu_pct"), 0),
    ("load tool CPU %", lambda f, _u: f.get("tool_cpu_pct"), 0),
    ("other processes CPU % (noise)", lambda f, _u: f.get("other_cpu_pct"), 0),
    ("errors", lambda f, _u: f.get("errors"), 0),
]


def load_table(load: str, figures: dict[str, dict[str, Any]], order: list[str]) -> str:
    """One scenario: metrics down, systems across; skipped systems get a footnote."""
    cols = [s for s in order if s in figures]
    # The reference figures each cell is compared with: upstream direct, and the bare floor.
    bare = figures.get("bare", {})
    up = {**figures.get("upstream", {}), "bare_p50_ms": bare.get("p50_ms"),
          "bare_rps": bare.get("rps")}
    stream = load.startswith("stream")
    lines = [f"| {load} | " + " | ".join(LABELS.get(s, s) for s in cols) + " |",
             "| --- |" + " ---: |" * len(cols)]
    for name, fn, digits in _METRICS:
        if "TTFB" in name and not stream:
            continue
        cells = []
        for s in cols:
            fig = figures[s]
            cells.append("skipped" if "skipped" in fig else _fmt(fn(fig, up), digits))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [f"- {LABELS.get(s, s)}: {figures[s].get('skipped') or figures[s].get('invalid')}"
             for s in cols if "skipped" in figures[s] or "invalid" in figures[s]]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def systems_table(systems: dict[str, dict[str, Any]], order: list[str]) -> str:
    lines = ["| system | status | processes | RSS at start MB | RSS idle (warm) MB | "
             "largest process MB |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for s in order:
        info = systems.get(s)
        if info is None:
            continue
        status = "ok" if info.get("ok") else f"unavailable: {info.get('reason', '')[:160]}"
        lines.append(f"| {LABELS.get(s, s)} | {status} | {info.get('processes', '—')} | "
                     f"{_fmt(info.get('rss_start_mb'), 0)} | {_fmt(info.get('idle_rss_mb'), 0)} | "
                     f"{_fmt(info.get('idle_rss_max_mb'), 0)} |")
    return "\n".join(lines) + "\n"


def soak_table(soak: dict[str, Any]) -> str:
    rows = soak.get("samples", [])
    if not rows:
        return ""
    lines = [f"Soak: `{soak['system']}` under {soak['load']} for {soak['seconds']} s.\n",
             "| t s | req/s | p99 ms | RSS MB |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['t']:.0f} | {_fmt(r.get('rps'), 0)} | {_fmt(r.get('p99_ms'), 2)} | "
              f"{_fmt(r.get('rss_mb'), 1)} |" for r in rows]
    first, last = rows[0]["rss_mb"], rows[-1]["rss_mb"]
    lines.append(f"\nRSS {first:.1f} → {last:.1f} MB ({last - first:+.1f} MB), "
                 f"max {max(r['rss_mb'] for r in rows):.1f} MB.")
    return "\n".join(lines) + "\n"


LATENCY_NOTE = """## Latency: saturated and paced scenarios

`chat-c16`, `chat-c64` and `stream-c16` are closed loops: each connection sends its next request
the moment the last one is answered, so every system runs at 100 % of the CPU it can get and a
request's latency is mostly its wait in the queue: p50 ≈ connections ÷ throughput (Little's law).
At 64 connections that is 12 ms for the bare passthrough itself. Those scenarios measure
throughput. What a system *adds* to a request under concurrency is measured by the `-paced`
scenarios: the same connections, each pausing a random time (exponential) before each request,
which offers a fixed rate below the capacity of the systems that can sustain it (the peers
that cannot are saturated there too, as their rows show).
"""


def _describe(load: str) -> list[str]:
    spec = loads.LOADS.get(load)
    if spec is None or not spec.think_ms:
        return []
    return [f"{spec.concurrency} connections, each pausing {spec.think_ms:.0f} ms on average "
            f"before each request: about {spec.offered_rps:,.0f} requests/s offered.\n"]


def render(run: dict[str, Any], order: list[str]) -> str:
    """The whole markdown report of one run (RESULTS.md, or stdout for --quick)."""
    meta = run["meta"]
    out = [f"# Gateway benchmark ({meta['mode']})\n",
           f"- date: {meta['date']}", f"- command: `{meta['command']}`",
           f"- machine: {meta['machine']}",
           "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
           f"- load average at start / end: {meta['load_start']} / {meta.get('load_end', '?')}",
           f"- fake upstream: {meta['upstream']}; ceiling {meta.get('ceiling', '?')}",
           f"- each figure: {meta['duration']} s after {meta['warmup']} s warm-up; wrk -t1 for "
           "chat/embeddings, bench/sse_load.py for streams; each scenario run "
           f"{meta.get('rounds', 1)}× back to back on every system, the round with the least "
           "CPU taken by other processes is shown (all rounds in the JSON)",
           "", "## Targets\n", targets_table([_target(t) for t in run["targets"]]),
           "## Systems\n", systems_table(run["systems"], order), LATENCY_NOTE]
    for load, figures in run["results"].items():
        out += [f"## {load}\n", *_describe(load), load_table(load, figures, order)]
    if run.get("soak"):
        out += ["## Soak\n", soak_table(run["soak"])]
    if meta.get("notes"):
        out += ["## Notes\n", *[f"- {n}" for n in meta["notes"]], ""]
    return "\n".join(out)
