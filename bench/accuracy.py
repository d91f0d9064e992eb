"""Accuracy of the guardrail checks on the labelled sets in /work/shared/data, and their speed.

Run: ``.venv/bin/python bench/accuracy.py [--data DIR]``. Prints a markdown report and writes it to
bench/ACCURACY.md. Every figure is recomputed from the data; nothing is hard-coded but the
review rules for the noisy secrets set, which are spelled out below and in the report.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.checks.base import Check, ScanContext
from gateway.checks.registry import build_check

DATA = Path("/work/shared/data")
OUT = Path(__file__).with_name("ACCURACY.md")
PII_ENTITIES = ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN", "PHONE_NUMBER")
TARGETS = {e: 0.95 for e in PII_ENTITIES} | {"PHONE_NUMBER": 0.90}
IN = ScanContext("input")


@dataclass
class PR:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


Spans = list[tuple[str, int, int]]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score_spans(gold: Spans, pred: Spans, scores: dict[str, PR]) -> None:
    """Span-overlap matching per entity: a prediction is right if it overlaps a gold span of its
    type; a gold span is found if any prediction of its type overlaps it."""
    for entity, pr in scores.items():
        g = [(s, e) for t, s, e in gold if t == entity]
        p = [(s, e) for t, s, e in pred if t == entity]
        pr.tp += sum(any(_overlaps(x, y) for x in p) for y in g)
        pr.fn += sum(not any(_overlaps(x, y) for x in p) for y in g)
        pr.fp += sum(not any(_overlaps(x, y) for y in g) for x in p)


def presidio_default_analyzer() -> Callable[[str], Spans]:
    """presidio's stock pattern-only setup: all recognizers, default threshold (0), stock e-mail
    recognizer (global tldextract), lemma context enhancer (inert without NLP artifacts)."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])

    def run(text: str) -> Spans:
        return [(r.entity_type, r.start, r.end) for r in analyzer.analyze(text, language="en")]

    return run


def bench_pii(data: Path) -> tuple[dict[str, PR], dict[str, PR]]:
    rows = json.loads((data / "pii/presidio_research_synth_dataset_v2.json").read_text())
    ours = build_check("pii", {})
    baseline = presidio_default_analyzer()
    mine = {e: PR() for e in PII_ENTITIES}
    stock = {e: PR() for e in PII_ENTITIES}
    for row in rows:
        text = row["full_text"]
        gold = [(s["entity_type"], s["start_position"], s["end_position"]) for s in row["spans"]]
        score_spans(gold, [(f.label, f.start, f.end) for f in ours.scan(text, IN)], mine)
        score_spans(gold, baseline(text), stock)
    return mine, stock


def bench_injection(data: Path) -> dict[str, Any]:
    check = build_check("prompt_injection", {})
    attacks = json.loads((data / "injection/cyberseceval_prompt_injection.json").read_text())
    by_variant: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for a in attacks:
        by_variant[a["injection_variant"]] += 1
        found[a["injection_variant"]] += bool(check.scan(a["user_input"], IN))
    with (data / "overblock/xstest_prompts.csv").open(newline="") as fh:
        prompts = list(csv.DictReader(fh))
    safe = [p["prompt"] for p in prompts if p["label"] == "safe"]
    unsafe = [p["prompt"] for p in prompts if p["label"] != "safe"]
    flagged_safe = [p for p in safe if check.scan(p, IN)]
    # A second, independent safe set: model answers to the XSTest prompts (benign prose, lists,
    # code, refusals), scanned as input text would be.
    completions: list[str] = []
    for path in sorted((data / "refusal").glob("*.csv")):
        with path.open(newline="") as fh:
            completions += [row["completion"] for row in csv.DictReader(fh)]
    return {
        "completion_fp": sum(bool(check.scan(t, IN)) for t in completions),
        "n_completions": len(completions),
        "recall": sum(found.values()) / len(attacks),
        "n": len(attacks),
        "by_variant": {v: (found[v], n) for v, n in by_variant.most_common()},
        "fpr": len(flagged_safe) / len(safe),
        "n_safe": len(safe),
        "flagged_safe": flagged_safe,
        "unsafe_flagged": sum(bool(check.scan(p, IN)) for p in unsafe),
        "n_unsafe": len(unsafe),
    }


# --- secrets: review rules for a noisy set --------------------------------------------------------
# Positives that are not secret values at all: regex source fragments from gitleaks rules,
# bare keywords/prefixes with no secret body, and xxxx placeholders.
_REGEX_FRAGMENT = re.compile(r"\[[^\]]*\]\{|\\[.sdw]|\{\d+(?:,\d*)?\}")
# A prefix cut before the secret ('sk-ant-api03-', 'alibabaKey := "LTAI' is kept: it has a body),
# a lone keyword ('anthropic'), or a format string.
_NO_BODY = re.compile(
    r"[-_]\s*$|:=\s*\"[^\"]{0,5}$|[=:]\s*\\?\"?\s*$|/(?:services|workflows|triggers|webhookb2)/$"
    r"|^[A-Za-z0-9]{1,12}$|%s|^\"type\": \"service_account\"$"
)
_XXXX = re.compile(r"x{6,}|X{6,}")
# Negatives that are format-valid credentials: vectors of one detector used as negatives for
# another (a GitHub token in the GitLab tests, an admin key in the API-key rule) and gitleaks'
# allow-listed Google keys. A gateway must still stop these, so they are excluded, not counted.
_CROSS_RULE = re.compile(
    r"^(?:ghp_[A-Za-z0-9]{36}|sk-ant-(?:api03|admin01)-[\w-]{93}AA|AIza[\w-]{35})$"
)


def review(row: dict[str, Any]) -> str | None:
    """Why a row is left out of the reviewed figures, or None to keep it."""
    text = row["text"].strip()
    if row["label"]:
        if _REGEX_FRAGMENT.search(text):
            return "positive is a regex fragment"
        if _XXXX.search(text):
            return "positive is an xxxx placeholder"
        if len(text) < 40 and _NO_BODY.search(text):
            return "positive is a keyword or prefix without a secret"
        return None
    if _CROSS_RULE.match(text) and not re.search(r"abcdef|123456", text):
        return "negative is a valid credential of another rule / allow-listed sample"
    return None


def bench_secrets(data: Path) -> dict[str, Any]:
    check = build_check("secrets", {})
    rows = [json.loads(line) for line in (data / "secrets/secret_vectors.jsonl").open()]
    raw, reviewed = PR(), PR()
    excluded: Counter[str] = Counter()
    missed_kinds: Counter[str] = Counter()
    for row in rows:
        pred = bool(check.scan(row["text"], IN))
        for pr in (raw,) + (() if (why := review(row)) else (reviewed,)):
            pr.tp += pred and row["label"]
            pr.fp += pred and not row["label"]
            pr.fn += (not pred) and row["label"]
        if why:
            excluded[why] += 1
        elif row["label"] and not pred:
            missed_kinds[Path(row["file"]).stem.removesuffix("_test")] += 1
    return {
        "raw": raw,
        "reviewed": reviewed,
        "n": len(rows),
        "excluded": excluded,
        "missed": missed_kinds,
    }


def bench_refusal(data: Path) -> dict[str, tuple[PR, PR]]:
    check = build_check("refusal", {})
    out = ScanContext("output")
    results: dict[str, tuple[PR, PR]] = {}
    for path in sorted((data / "refusal").glob("*.csv")):
        full, any_refusal = PR(), PR()
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                pred = bool(check.scan(row["completion"], out))
                label = row["final_label"]
                for pr, pos in ((full, label.startswith("2")), (any_refusal, label[0] in "23")):
                    pr.tp += pred and pos
                    pr.fp += pred and not pos
                    pr.fn += (not pred) and pos
        model = path.stem.removeprefix("xstest_v2_completions_").removesuffix("_labeled")
        results[model] = (full, any_refusal)
    return results


def _prompt_1kb(pii: bool) -> str:
    """A 1 KB prompt: with an e-mail, a phone and an IP (``pii``), or with only ordinary numbers."""
    if pii:
        base = (
            "Hi team, please summarise the meeting notes below and draft a reply to Dana "
            "(dana.lee@acme.com, +1 415 555 0199). The staging box is 10.20.30.40 and the "
            "deploy key lives in vault, not here. Action items: migrate billing, review the "
            "Q3 roadmap, and schedule the security training. "
        )
    else:
        base = (
            "Hi team, please summarise the meeting notes below and draft a reply to Dana. "
            "The staging box is in the usual place and the deploy key lives in vault, not here. "
            "Action items: migrate billing, review the Q3 roadmap, and schedule the security "
            "training for 12 people on May 3rd; budget is about 4,500 dollars. "
        )
    return (base * 6)[:1024]


SPEED_CHECKS = ("pii", "secrets", "prompt_injection")


def bench_speed(repeat: int = 300) -> dict[str, dict[str, float]]:
    """p50 milliseconds per 1 KB prompt (clean / PII-bearing), per check and combined, as the
    policy engine runs a check: ``prefilter`` then, when it passes, ``scan``."""
    checks: dict[str, Check] = {n: build_check(n, {}) for n in SPEED_CHECKS}
    out: dict[str, dict[str, float]] = {}
    for kind, text in (("clean", _prompt_1kb(False)), ("pii", _prompt_1kb(True))):
        timings: dict[str, list[float]] = {n: [] for n in [*checks, "combined"]}
        for _ in range(repeat):
            total = 0.0
            for name, check in checks.items():
                t0 = time.perf_counter()
                if check.prefilter(text):
                    check.scan(text, IN)
                dt = (time.perf_counter() - t0) * 1000
                timings[name].append(dt)
                total += dt
            timings["combined"].append(total)
        out[kind] = {n: statistics.median(v) for n, v in timings.items()}
    return out


def _pct(x: float) -> str:
    return f"{x:.3f}"


def _flag(value: float, target: float) -> str:
    return "ok" if value >= target else "**below**"


def render_unseen() -> list[str]:
    """The sections on the bench/eval sets (public corpora from pinned packages, generated)."""
    from bench.eval.report import render as render_eval

    return render_eval(presidio_default_analyzer())


def render(data: Path) -> str:
    mine, stock = bench_pii(data)
    inj = bench_injection(data)
    sec = bench_secrets(data)
    ref = bench_refusal(data)
    speed = bench_speed()
    lines = ["# Guardrail check accuracy", ""]
    lines += [
        f"Data: `{data}` (development sets; held-out sets of the same kinds are used elsewhere).",
        "Regenerate with `.venv/bin/python bench/accuracy.py`.",
        "",
        "## PII (presidio-research synthetic set, 1,500 sentences, span-overlap matching)",
        "",
        "| entity | gold | ours P | ours R | target | presidio default P | presidio default R |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for e in PII_ENTITIES:
        m, s = mine[e], stock[e]
        verdict = _flag(min(m.precision, m.recall), TARGETS[e])
        lines.append(
            f"| {e} | {m.tp + m.fn} | {_pct(m.precision)} | {_pct(m.recall)} | "
            f"≥ {TARGETS[e]} {verdict} | {_pct(s.precision)} | {_pct(s.recall)} |"
        )
    lines += [
        "",
        "Ours: `pii` check defaults (six entities, `min_score` 0.4, offline e-mail TLD check that "
        "also accepts reserved TLDs, raw-text context words, overlapping findings resolved). "
        "presidio default: every pattern recognizer with the no_op engine and threshold 0.",
        "",
        "Where they differ: CREDIT_CARD recall comes from an extra Luhn-validated pattern for "
        "12-19 digit numbers (19-digit Visa, 2-series Mastercard, 15-digit JCB, 12-digit "
        "Maestro), which presidio's pattern (at most 17 digits, no 2-series) misses. "
        "PHONE_NUMBER: presidio's recognizer (libphonenumber, 8 regions) misses national "
        "formats of other regions ('451 5986', '78 651 450') and numbers libphonenumber calls "
        "invalid ('+1-984-182-0190'); adding 19 regions measured R 0.85 but P 0.51. Ours reads "
        "the digit-group structure instead (`gateway/checks/pii/phone.py`): a whole run of digit "
        "groups with an optional '+' prefix, '(0)' trunk, '(area)' and extension; one kind of "
        "separator, 7-15 digits; dates, dotted quads, SSN/ZIP+4 shapes, card-like 4-4-4 groups,"
        " ISBN-like one-digit groups, long unbroken ids and amounts after a currency sign are "
        "rejected. A prefix, parentheses, an extension or three or more groups score 0.4 "
        "(presidio's phone score); two groups or one unbroken run count only when presidio's "
        "recognizer validates them or a phone word (phone, call, fax, mobile, message, ...) is "
        "next to them, never on 'number' alone (licence and account numbers); runs of one- or "
        "two-digit groups apart by spaces (lists, hex dumps) need a phone word. Remaining "
        "errors: a 4-2-4 driver-licence number taken for a phone, and two-group numbers with no"
        " phone word ('answering at 99 668472'). On the other development sets (XSTest, "
        "CyberSecEval, refusal completions, secrets vectors, 2,400 texts, no phone numbers "
        "labelled) it reports only numbers that are phones ('1-800-829-1040', JSON phone_number"
        " fields) plus one unbroken 10-digit run that libphonenumber accepts.",
        "",
        "## Prompt injection (heuristics, `threshold` 0.6)",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| recall on CyberSecEval attacks (n={inj['n']}) | {_pct(inj['recall'])} |",
        f"| false-positive rate on XSTest safe prompts (n={inj['n_safe']}, target ≤ 0.02) | "
        f"{_pct(inj['fpr'])} |",
        f"| false-positive rate on XSTest v2 model completions (n={inj['n_completions']}, "
        f"independent safe set) | {_pct(inj['completion_fp'] / inj['n_completions'])} |",
        f"| XSTest unsafe prompts flagged (not injections; informational) | "
        f"{inj['unsafe_flagged']}/{inj['n_unsafe']} |",
        "",
        "Recall by attack variant: "
        + ", ".join(f"{v} {f}/{n}" for v, (f, n) in inj["by_variant"].items())
        + ".",
        "",
        "Signals: strong phrases (instruction overrides, DAN/jailbreak, system-prompt extraction, "
        "role markers, multilingual overrides, encoded payloads) reach the threshold alone; weak "
        "ones (0.3-0.5: hypothetical/virtual framing, persona, someone's personal data, output-"
        "format tricks, planted assertions, document carriers, payload splitting, authority and "
        "persuasion) count only together. Structural signals: fake Q:/A: turns, a token repeated "
        "10+ times, Morse, pig latin and letter-shifted (ROT13/Caesar) text. "
        "What is still missed: attacks that are ordinary questions whose only fault is being off "
        "the system prompt's topic (most of indirect_reference, overload_with_information and "
        "different_user_input_language: a question in another language, a long list of trivia, "
        "'Describe the compound C17H19NO3'); they cannot be told from benign input without the "
        "system prompt. Also missed: persuasion without a manipulation phrase, and hypothetical "
        "framing around an opinion question.",
        "",
        "## Secrets (detect-secrets + gitleaks vectors, row-level)",
        "",
        "| rows | n | precision | recall |",
        "| --- | ---: | ---: | ---: |",
        f"| all rows, labels as given | {sec['n']} | {_pct(sec['raw'].precision)} | "
        f"{_pct(sec['raw'].recall)} |",
        f"| reviewed (exclusions below) | {sec['n'] - sum(sec['excluded'].values())} | "
        f"{_pct(sec['reviewed'].precision)} | {_pct(sec['reviewed'].recall)} |",
        "",
        "Excluded from the reviewed figures: "
        + "; ".join(f"{why}: {n}" for why, n in sec["excluded"].most_common())
        + ".",
        "",
        "Reviewed positives still missed, by source rule (mostly vendors without a pattern here): "
        + ", ".join(f"{k} {n}" for k, n in sec["missed"].most_common())
        + ".",
        "",
        "## Refusal (XSTest v2 completions, human `final_label`)",
        "",
        "| model | positive = full refusal P / R | positive = full or partial P / R |",
        "| --- | ---: | ---: |",
    ]
    for model, (full, anyr) in ref.items():
        lines.append(
            f"| {model} | {_pct(full.precision)} / {_pct(full.recall)} | "
            f"{_pct(anyr.precision)} / {_pct(anyr.recall)} |"
        )
    lines += [
        "",
        "## Speed (p50 of 300 runs of prefilter + scan on a 1 KB prompt, one core, shared host)",
        "",
        "Clean: ordinary prose with a few small numbers (12 people, May 3rd, 4,500 dollars). "
        "PII: the same kind of prompt with an e-mail, a phone number and an IP. "
        "Target: pii + secrets + prompt_injection at most 2 ms at p50.",
        "",
        "| check | clean p50 ms | PII-bearing p50 ms |",
        "| --- | ---: | ---: |",
        *(
            f"| {name} | {speed['clean'][name]:.2f} | {speed['pii'][name]:.2f} |"
            for name in speed["clean"]
        ),
        "",
    ]
    lines += render_unseen()
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(list(argv) if argv is not None else None)
    report = render(args.data)
    print(report)
    args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
