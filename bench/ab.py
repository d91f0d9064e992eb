"""A/B: the gateway from two source trees under the same load, alternating, on one upstream.

    git worktree add /tmp/gw-a HEAD~1        # or any checkout of the gateway
    python bench/ab.py --a /tmp/gw-a --b . [--load chat-c16] [--variant gateway] [--rounds 4]

On this shared 2-core machine req/s moves by ±20 % from one minute to the next; comparing
figures from separate runs hides a 10 % change. This starts both gateways at once (each with
``PYTHONPATH`` pointing at its tree) and measures them in turn, A B A B ..., so both see the same
machine; the medians of CPU milliseconds per request (the steadiest figure) and of req/s are
printed per side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import loads
import systems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="source tree A (holds gateway/)")
    ap.add_argument("--b", required=True, help="source tree B")
    ap.add_argument("--load", default="chat-c16", choices=list(loads.LOADS))
    ap.add_argument("--variant", default="gateway", help="gateway, gw-redis, gw-policy, ...")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=float, default=5.0)
    a = ap.parse_args(argv)
    trees = {"A": str(Path(a.a).resolve()), "B": str(Path(a.b).resolve())}
    figures: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="gw-ab-") as tmp:
        workdir = Path(tmp)
        upstream = systems.start_upstream(workdir, 0, 20, 0)
        started: dict[str, systems.System] = {}
        saved = os.environ.get("PYTHONPATH")
        try:
            for side, tree in trees.items():
                os.environ["PYTHONPATH"] = tree
                sub = workdir / side
                sub.mkdir()
                started[side] = systems.start_gateway(sub, upstream, a.variant)
            _restore(saved)
            load = loads.LOADS[a.load]
            for _ in range(a.rounds):
                for side, sys_ in started.items():
                    fig = loads.measure(sys_, load, duration=a.duration, warmup=1.0,
                                        workdir=workdir, upstream=upstream)
                    figures[side].append(fig)
                    ttfb = f"  TTFB p50 {fig['ttfb_p50_ms']:.2f} ms" if "ttfb_p50_ms" in fig else ""
                    print(f"  {side}  {fig.get('rps', 0):8,.0f}/s  "
                          f"cpu {fig.get('cpu_ms_per_req', 0):.3f} ms/req  "
                          f"p50 {fig.get('p50_ms', 0):.2f} ms{ttfb}", flush=True)
        finally:
            _restore(saved)
            for sys_ in started.values():
                systems.stop_proc(sys_.proc)
            systems.stop_proc(upstream.proc)
    for side, tree in trees.items():
        rows = [f for f in figures[side] if "rps" in f]
        if not rows:
            print(f"{side} ({tree}): no figures")
            continue
        ttfbs = [f["ttfb_p50_ms"] for f in rows if "ttfb_p50_ms" in f]
        ttfb = f", TTFB p50 {statistics.median(ttfbs):.2f} ms" if ttfbs else ""
        print(f"{side} ({tree}): median {statistics.median(f['rps'] for f in rows):,.0f} req/s, "
              f"{statistics.median(f['cpu_ms_per_req'] for f in rows):.3f} CPU ms/req, "
              f"p50 {statistics.median(f['p50_ms'] for f in rows):.2f} ms{ttfb}")
    return 0


def _restore(saved: str | None) -> None:
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.exit(main(sys.argv[1:]))
