"""CPU per request of each thread of one system under chat-c16 (from /proc/<pid>/task).

    python bench/thread_cpu.py [--system gateway|bare|gw-redis|...] [--duration 8]

Shows how a request's CPU splits between the event loop thread and helper threads (the SQLite
log writer): the figure that showed the writer's GIL hand-offs (bench/OPTIMISATIONS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import loads
import run
import systems


def thread_ticks(pid: int) -> dict[tuple[str, str], int]:
    """utime+stime clock ticks per (thread id, name)."""
    out: dict[tuple[str, str], int] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[(tid, name)] = int(fields[11]) + int(fields[12])
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", default="gateway")
    ap.add_argument("--load", default="chat-c16", choices=list(loads.LOADS))
    ap.add_argument("--duration", type=float, default=8.0)
    a = ap.parse_args(argv)
    hz = os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory(prefix="gw-threads-") as tmp:
        workdir = Path(tmp)
        upstream = systems.start_upstream(workdir, 0, 20, 0)
        target = None
        try:
            target = run._starter(a.system, workdir, upstream)()
            load = loads.LOADS[a.load]
            loads.measure(target, load, duration=2, warmup=0, workdir=workdir, upstream=upstream)
            assert target.pid
            before = thread_ticks(target.pid)
            fig = loads.measure(target, load, duration=a.duration, warmup=0, workdir=workdir,
                                upstream=upstream)
            after = thread_ticks(target.pid)
        finally:
            systems.stop_proc(target.proc if target else None)
            systems.stop_proc(upstream.proc)
    n = fig["requests"]
    print(f"{a.system} under {a.load}: {fig['rps']:,.0f} req/s, {n} requests")
    for key, ticks in after.items():
        cpu = (ticks - before.get(key, 0)) / hz
        if cpu > 0:
            print(f"  thread {key[0]} ({key[1]}): {cpu:.2f} s CPU, {cpu / n * 1e6:.1f} µs/request")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.exit(main(sys.argv[1:]))
