"""Benchmark the gateway against the bare passthrough floor and its peers, in one run.

    python bench/run.py --quick            # make bench: under five minutes
    python bench/run.py --full [--soak 300]  # make bench-full: writes bench/RESULTS.md
    python bench/run.py --install-peers    # litellm[proxy] and @portkey-ai/gateway only

All systems are started once, on 127.0.0.1, against one fake upstream; then for each scenario
every system is measured back to back (upstream direct first), so "added latency" and "fraction of
the floor" compare figures taken minutes apart under the same machine load. Raw figures go to
``bench/out/<mode>-<time>.json``; the markdown report is printed (and, with --full, written to
bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import loads
import peers
import procstat
import report
import systems
from systems import BENCH, System, Unavailable

ORDER = ["upstream", "bare", "gateway", "gw-policy", "gw-redis", "gw-redis-policy", "gw-w2",
         "litellm", "portkey"]
ALL = list(loads.LOADS)
_CORE = ["chat-c1", "chat-c16", "stream-c16"]
#: Which scenarios each system runs in each mode. Quick keeps the target-deciding ones.
PLANS: dict[str, dict[str, list[str]]] = {
    "quick": {
        "upstream": ALL, "bare": ALL, "gateway": ALL,
        "gw-policy": _CORE, "gw-redis": ["chat-c1", "chat-c16"], "gw-w2": ["chat-c64"],
        "litellm": _CORE, "portkey": _CORE,
    },
    "full": {name: ALL for name in ORDER},
}
#: (duration, warm-up) seconds per figure, and rounds per scenario (the quietest is reported).
TIMES = {"quick": (4.0, 1.0, 1), "full": (10.0, 2.0, 2)}


def _starter(name: str, workdir: Path, upstream: System) -> Callable[[], System]:
    if name == "bare":
        return lambda: systems.start_bare(workdir, upstream)
    if name == "litellm":
        return lambda: systems.start_litellm(workdir, upstream)
    if name == "portkey":
        return lambda: systems.start_portkey(workdir, upstream)
    return lambda: systems.start_gateway(workdir, upstream, name)


def start_all(names: list[str], workdir: Path, running: dict[str, System],
              info: dict[str, dict[str, Any]]) -> None:
    """Start every system into ``running`` (filled in place, so a crash half-way still stops
    what was started); one that cannot start is recorded with its reason and left out."""
    upstream = running["upstream"]
    info["upstream"] = {"ok": True, "processes": 1}
    for name in names:
        if name == "upstream":
            continue
        t0 = time.monotonic()
        try:
            running[name] = _starter(name, workdir, upstream)()
        except Unavailable as e:
            info[name] = {"ok": False, "reason": str(e)}
            print(f"  {name:16} unavailable: {str(e)[:300]}", flush=True)
            continue
        info[name] = {"ok": True, "start_s": round(time.monotonic() - t0, 2)}
        print(f"  {name:16} up in {time.monotonic() - t0:.1f}s", flush=True)
    for name, sys_ in running.items():
        snap = procstat.Snapshot.take(sys_.pid or 0)
        info[name] |= {"rss_start_mb": snap.rss_total, "processes": len(snap.rss)}


def record_idle(running: dict[str, System], plan: dict[str, list[str]],
                info: dict[str, dict[str, Any]]) -> None:
    """Idle RSS after one request of each scenario (lazy imports done), then 2 s of quiet."""
    for name, sys_ in running.items():
        for load in plan.get(name, []):
            problem = loads.check_once(sys_, loads.LOADS[load])
            if problem:
                print(f"  {name:16} {load}: {problem[:200]}", flush=True)
    time.sleep(2)
    for name, sys_ in running.items():
        snap = procstat.Snapshot.take(sys_.pid or 0)
        info[name] |= {"idle_rss_mb": snap.rss_total, "idle_rss_max_mb": snap.rss_max}


def _line(load: str, name: str, fig: dict[str, Any]) -> str:
    if "skipped" in fig:
        return f"  {load:11} {name:16} skipped: {fig['skipped'][:160]}"
    ttfb = f"  ttfb p50 {fig['ttfb_p50_ms']:.2f}" if "ttfb_p50_ms" in fig else ""
    bad = f"  INVALID {fig['invalid']}" if "invalid" in fig else ""
    return (f"  {load:11} {name:16} {fig['rps']:9,.0f}/s  p50 {fig['p50_ms']:7.2f}  "
            f"p99 {fig['p99_ms']:7.2f} ms{ttfb}  cpu {fig['cpu_pct']:4.0f}%  "
            f"upstream cpu {fig['upstream_cpu_pct']:3.0f}%{bad}")


def _round(load: str, running: dict[str, System], plan: dict[str, list[str]],
           args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    """Every system on one scenario, back to back, upstream direct first."""
    figures: dict[str, dict[str, Any]] = {}
    for name in ORDER:
        if name not in running or load not in plan.get(name, []):
            continue
        try:
            fig = loads.measure(running[name], loads.LOADS[load], duration=args.duration,
                                warmup=args.warmup, workdir=workdir,
                                upstream=running["upstream"])
        except RuntimeError as e:  # the load tool printed no result: say so, go on
            fig = {"skipped": str(e)}
        figures[name] = fig
        print(_line(load, name, fig), flush=True)
    return figures


def _noise(figures: dict[str, dict[str, Any]]) -> float:
    """Mean CPU other processes took during a round: lower is a cleaner comparison."""
    values = [f["other_cpu_pct"] for f in figures.values() if "other_cpu_pct" in f]
    return sum(values) / len(values) if values else 0.0


def measure_all(running: dict[str, System], plan: dict[str, list[str]], args: argparse.Namespace,
                workdir: Path) -> tuple[report.Results, dict[str, list[Any]]]:
    """Each scenario ``args.rounds`` times; the report keeps the quietest round of each (a
    whole round, so its figures stay back to back); the JSON keeps every round."""
    results: report.Results = {}
    all_rounds: dict[str, list[Any]] = {}
    for load in ALL:
        if args.loads and load not in args.loads:
            continue
        rounds = [_round(load, running, plan, args, workdir) for _ in range(args.rounds)]
        all_rounds[load] = [{"noise_cpu_pct": _noise(r), "figures": r} for r in rounds]
        results[load] = min(rounds, key=_noise)
        if args.rounds > 1:
            print(f"  {load}: kept round {rounds.index(results[load]) + 1} of {args.rounds} "
                  f"(other processes {_noise(results[load]):.0f}% CPU)", flush=True)
    return results, all_rounds


def soak(sys_: System, upstream: System, seconds: float, workdir: Path) -> dict[str, Any]:
    """chat-c16 for ``seconds`` in 10 s slices, recording req/s, p99 and RSS after each."""
    load, samples, t0 = loads.LOADS["chat-c16"], [], time.monotonic()
    for _ in range(int(seconds // 10) + 1):
        left = seconds - (time.monotonic() - t0)
        if left < 1:
            break
        fig = loads.measure(sys_, load, duration=min(10.0, left), warmup=0, workdir=workdir,
                            upstream=upstream)
        rss = procstat.Snapshot.take(sys_.pid or 0).rss_total
        samples.append({"t": time.monotonic() - t0, "rps": fig.get("rps"),
                        "p99_ms": fig.get("p99_ms"), "rss_mb": rss,
                        "rss_peak_mb": fig.get("rss_load_mb")})
        print(f"  soak t={samples[-1]['t']:5.0f}s  {fig.get('rps', 0):8,.0f}/s  "
              f"RSS {rss:6.1f} MB", flush=True)
    return {"system": sys_.name, "load": load.name, "seconds": seconds, "samples": samples}


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_quiet(seconds: float, threshold: float) -> None:
    """Other people's test runs move every figure: wait (bounded) for a quiet machine."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        load1 = float(_loadavg().split()[0])
        if load1 <= threshold:
            return
        print(f"  waiting for a quiet machine: load {load1:.2f} > {threshold}", flush=True)
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
    print("  machine still busy; measuring anyway (see the noise row)", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the make bench run (default)")
    mode.add_argument("--full", action="store_true", help="everything; writes bench/RESULTS.md")
    ap.add_argument("--install-peers", action="store_true", help="install litellm/portkey")
    ap.add_argument("--no-peers", action="store_true", help="skip litellm and portkey")
    ap.add_argument("--soak", type=float, default=0, metavar="SECONDS",
                    help="after the matrix, hold chat-c16 on the gateway and record RSS")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to SECONDS for the machine to be quiet (see --quiet-load)")
    ap.add_argument("--quiet-load", type=float, default=0.5,
                    help="1-minute load average counted as quiet (default 0.5)")
    ap.add_argument("--duration", type=float, help="seconds per figure")
    ap.add_argument("--rounds", type=int, help="runs of each scenario; the quietest is kept")
    ap.add_argument("--warmup", type=float, help="warm-up seconds before each figure")
    ap.add_argument("--systems", nargs="*", help=f"subset of {ORDER}")
    ap.add_argument("--loads", nargs="*", help=f"subset of {ALL}")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="fake upstream latency")
    ap.add_argument("--chunks", type=int, default=20, help="chunks per fake stream")
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = ap.parse_args(argv)
    args.mode = "full" if args.full else "quick"
    args.duration = args.duration or TIMES[args.mode][0]
    args.warmup = TIMES[args.mode][1] if args.warmup is None else args.warmup
    args.rounds = args.rounds or int(TIMES[args.mode][2])
    return args


def _plan(args: argparse.Namespace) -> dict[str, list[str]]:
    plan = dict(PLANS[args.mode])
    if args.no_peers:
        plan = {k: v for k, v in plan.items() if k not in ("litellm", "portkey")}
    if args.systems:
        plan = {k: v for k, v in plan.items() if k in args.systems or k == "upstream"}
    return plan


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "mode": args.mode, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "machine": peers.machine(), "versions": peers.versions(), "load_start": _loadavg(),
        "duration": args.duration, "warmup": args.warmup, "rounds": args.rounds,
        "upstream": f"latency {args.latency_ms} ms, {args.chunks} chunks/stream, chunk delay "
                    f"{args.chunk_delay_ms} ms, embeddings 256-d",
        "notes": [],
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    problem = peers.ensure_wrk()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    notes: list[str] = []
    if args.install_peers or (args.full and not args.no_peers):
        notes += [n for n in (peers.install_litellm(), peers.install_portkey()) if n]
        if args.install_peers and not (args.full or args.quick):
            print("\n".join(notes) or "peers installed")
            return 1 if notes else 0
    if args.wait_quiet:
        wait_quiet(args.wait_quiet, args.quiet_load)
    plan, meta = _plan(args), _meta(args)
    meta["notes"] = notes
    print(f"benchmark ({args.mode}): load average {meta['load_start']}, {meta['machine']}")
    if "redis" in "".join(plan):
        note = systems.flush_redis_db()
        if note:
            meta["notes"].append(note)
    info: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        workdir = Path(tmp)
        upstream = systems.start_upstream(workdir, args.latency_ms, args.chunks,
                                          args.chunk_delay_ms)
        running: dict[str, System] = {"upstream": upstream}
        try:
            start_all(list(plan), workdir, running, info)
            record_idle(running, plan, info)
            ceiling = loads.measure(upstream, loads.LOADS["chat-c64"], duration=3, warmup=0,
                                    workdir=workdir, upstream=upstream)
            meta["ceiling"] = (f"{ceiling['rps']:,.0f} req/s (chat, 64 conns, wrk, upstream at "
                               f"{ceiling['upstream_cpu_pct']:.0f}% of one core)")
            print(f"fake upstream ceiling: {meta['ceiling']}", flush=True)
            results, rounds = measure_all(running, plan, args, workdir)
            soak_data = (soak(running["gateway"], upstream, args.soak, workdir)
                         if args.soak and "gateway" in running else None)
        finally:
            for sys_ in running.values():
                systems.stop_proc(sys_.proc)
            if "redis" in "".join(plan):
                systems.flush_redis_db()
    meta["load_end"] = _loadavg()
    return write(args, meta, info, results, {"soak": soak_data, "rounds": rounds})


def write(args: argparse.Namespace, meta: dict[str, Any], info: dict[str, dict[str, Any]],
          results: report.Results, extra: dict[str, Any]) -> int:
    """bench/out/<mode>-<time>.json (every round), <mode>-latest.md, and RESULTS.md if full."""
    tgts = report.targets(results, info)
    run = {"meta": meta, "systems": info, "results": results, **extra,
           "targets": [dataclasses.asdict(t) | {"verdict": t.verdict} for t in tgts]}
    out_dir = BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = out_dir / f"{args.mode}-{stamp}.json"
    raw.write_text(json.dumps(run, indent=1))
    md = report.render(run, ORDER)
    (out_dir / f"{args.mode}-latest.md").write_text(md)
    if args.mode == "full":
        # The optimisation log is kept by hand in OPTIMISATIONS.md and carried into every report.
        log = BENCH / "OPTIMISATIONS.md"
        notes = "\n" + log.read_text() if log.exists() else ""
        (BENCH / "RESULTS.md").write_text(
            md + f"\nRaw figures: `bench/out/{raw.name}`.\n" + notes)
    print("\n" + md)
    print(f"raw figures: {raw.relative_to(BENCH.parent)}")
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """Turn SIGTERM (a `timeout`, a CI cancel) into SystemExit so `finally` stops every system."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.exit(main(sys.argv[1:]))
