"""Profile one system under one benchmark load with py-spy, and print its hottest functions.

    python bench/pyspy_profile.py [--system gateway] [--load chat-c16] [--duration 20] [--svg]

Starts the fake upstream and the system exactly as run.py does, holds the load with wrk (or the
SSE client), and meanwhile runs ``py-spy record`` on the system's process tree. Collapsed stacks
go to ``bench/out/profile-<system>-<load>.txt`` (``--svg``: a flame graph instead) and the top
functions by own samples ("self") and by samples anywhere on the stack ("total") are printed.
py-spy must be installed in the venv (``.venv/bin/pip install py-spy``); see bench/profile.md.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import loads
import run
import systems
from systems import BENCH

#: Leaf frames py-spy reports as active although the thread only waits for work to arrive.
_IDLE_LEAVES = ("_worker (concurrent/futures/thread.py",)


def summarise(collapsed: Path, top: int, focus: str = "gateway/") -> str:
    """Top functions from py-spy's collapsed stacks (``frame;frame;leaf count`` per line)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = idle = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")[1:]  # the first frame is the process line
        if not frames:
            continue
        if frames[-1].startswith(_IDLE_LEAVES):
            idle += n
            continue
        own[frames[-1]] += n
        samples += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return "no samples"
    out = [f"{samples} samples ({idle} more of pool threads waiting for work, left out)"]
    focused = collections.Counter({f: n for f, n in total.items() if focus in f})
    for title, counter in (("self", own), ("total (inclusive)", total),
                           (f"total, {focus} frames only", focused)):
        out.append(f"\ntop {top} by {title}:")
        out += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", default="gateway", help="gateway, gw-redis, bare, litellm ...")
    ap.add_argument("--load", default="chat-c16", choices=list(loads.LOADS))
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--svg", action="store_true", help="write a flame graph instead")
    ap.add_argument("--gil", action="store_true",
                    help="sample only the thread holding the GIL (Python CPU, not I/O waits)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--focus", default="gateway/", help="path part for the third list")
    a = ap.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")
    out_dir = BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    dest = out_dir / f"profile-{a.system}-{a.load}.{'svg' if a.svg else 'txt'}"
    load = loads.LOADS[a.load]
    with tempfile.TemporaryDirectory(prefix="gw-profile-") as tmp:
        workdir = Path(tmp)
        upstream = systems.start_upstream(workdir, 0, 20, 0)
        target = None
        try:
            target = run._starter(a.system, workdir, upstream)()
            # Warm up first so imports and connection set-up are not in the profile.
            loads.measure(target, load, duration=2, warmup=0, workdir=workdir, upstream=upstream)
            cmd = [spy, "record", "--pid", str(target.pid), "--subprocesses", "--function",
                   "--rate", str(a.rate), "--duration", str(int(a.duration)),
                   *(["--gil"] if a.gil else []), "--format",
                   "flamegraph" if a.svg else "raw", "--output", str(dest)]
            spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            fig: dict[str, object] = {}
            worker = threading.Thread(target=lambda: fig.update(loads.measure(
                target, load, duration=a.duration + 1, warmup=0, workdir=workdir,
                upstream=upstream)))
            worker.start()
            _, err = spy_proc.communicate(timeout=a.duration + 60)
            worker.join(timeout=a.duration + 60)
        finally:
            systems.stop_proc(target.proc if target else None)
            systems.stop_proc(upstream.proc)
    print(f"{a.system} under {a.load}: {fig.get('rps', 0):,.0f} req/s while profiled "
          f"(py-spy slows it)")
    if spy_proc.returncode != 0:
        print(err.decode(errors="replace")[-500:])
        return 1
    print(f"written: {dest.relative_to(BENCH.parent)}")
    if not a.svg:
        print(summarise(dest, a.top, a.focus))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
