"""Where a gateway's resident memory grows under load: RSS by kind of mapping, over time.

    python bench/rss_by_mapping.py [--variant gateway] [--connections 16] [--duration 100]

Starts the fake upstream and one gateway variant as run.py does, holds chat load on it with wrk
and every 20 s prints how the resident set changed since t=15 s, split by mapping: ``[heap]``
(glibc's main arena: native allocations and large Python objects), anonymous regions (pymalloc
arenas, thread arenas), the SQLite files and shared objects. A Python-level leak grows the heap
and shows in tracemalloc; a native one (SQLite's statement cache held 30 MB this way, see
OPTIMISATIONS.md) only shows here.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import tempfile
import time
from pathlib import Path

import systems
from systems import BENCH

BODY = (b'{"model":"bench-model","messages":[{"role":"user","content":"Say hello to the '
        b'benchmark, please."}],"max_tokens":16}')


def by_kind(pid: int) -> collections.Counter[str]:
    """Resident KB per kind of mapping of one process."""
    out: collections.Counter[str] = collections.Counter()
    kind = "?"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else ""
                if not name:
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    kind = "anon >= 32 MB" if hi - lo >= 32 << 20 else "anon"
                elif name.startswith("/"):
                    kind = "sqlite files" if ".db" in name else "files and libraries"
                else:
                    kind = name
            elif parts and parts[0] == "Rss:":
                out[kind] += int(parts[1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="gateway", help="gateway, gw-redis, gw-policy ...")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--duration", type=int, default=100)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-rss-") as tmp:
        wd = Path(tmp)
        up = systems.start_upstream(wd, 0, 20, 0)
        gw = systems.start_gateway(wd, up, a.variant)
        try:
            assert gw.pid is not None
            (wd / "body.json").write_bytes(BODY)
            (wd / "headers.txt").write_text(f"Authorization: Bearer {systems.BENCH_KEY}\n")
            env = {**os.environ, "BENCH_BODY_FILE": str(wd / "body.json"),
                   "BENCH_HEADERS_FILE": str(wd / "headers.txt"), "BENCH_THINK_MS": "0"}
            print("idle MB:", {k: v // 1024 for k, v in by_kind(gw.pid).items() if v > 1024})
            wrk = subprocess.Popen(
                ["wrk", "-t1", f"-c{a.connections}", f"-d{a.duration}s", "-s",
                 str(BENCH / "wrk" / "post.lua"), gw.base_url + "/chat/completions"],
                env=env, stdout=subprocess.DEVNULL)
            time.sleep(15)
            base = by_kind(gw.pid)
            print("t=15 s MB:", {k: v // 1024 for k, v in base.items() if v > 1024}, flush=True)
            for t in range(35, a.duration, 20):
                time.sleep(20)
                now = by_kind(gw.pid)
                change = {k: round((now[k] - base.get(k, 0)) / 1024, 1) for k in now
                          if abs(now[k] - base.get(k, 0)) >= 256}
                print(f"t={t} s: RSS {sum(now.values()) / 1024:.1f} MB, change since 15 s "
                      f"(MB): {change or 'none'}", flush=True)
            wrk.wait()
        finally:
            systems.stop_proc(gw.proc)
            systems.stop_proc(up.proc)


if __name__ == "__main__":
    main()
