"""Train the prompt_injection model tier and write its weights into the package.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.eval.train_injection_model``. Data: the dev split of
``bench/eval/sources.py`` (jailbreak corpora vs benign instruction sets), plus the development
sets in /work/shared/data when present (CyberSecEval attacks; XSTest safe prompts and model
completions as benign). Held-out sets are never read. Logistic regression by AdaGrad on the
hashed n-gram features of ``gateway/checks/prompt_injection/model.py``, fixed seed, so the same
data gives the same file (float16, 2**16 weights, 128 KB).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np

from bench.eval.sources import injection_sets
from gateway.checks.prompt_injection.model import BITS, WEIGHTS
from gateway.checks.prompt_injection.model import ngram_features as features

SHARED = Path("/work/shared/data")


def training_texts() -> list[tuple[str, bool]]:
    rows = [(s.text, s.label) for samples in injection_sets()["dev"].values() for s in samples]
    if SHARED.is_dir():
        attacks = json.loads((SHARED / "injection/cyberseceval_prompt_injection.json").read_text())
        rows += [(a["user_input"], True) for a in attacks]
        with (SHARED / "overblock/xstest_prompts.csv").open(newline="") as fh:
            rows += [(r["prompt"], False) for r in csv.DictReader(fh)]
        for path in sorted((SHARED / "refusal").glob("*.csv")):
            with path.open(newline="") as fh:
                rows += [(r["completion"], False) for r in csv.DictReader(fh)]
    return rows


def train(rows: list[tuple[str, bool]], epochs: int = 12, lr: float = 0.5, l2: float = 1e-5,
          seed: int = 19) -> tuple[np.ndarray, float]:
    feats = [features(t) for t, _ in rows]
    ys = np.array([1.0 if y else 0.0 for _, y in rows])
    pos = ys.sum()
    # Class weights: benign prompts outnumber attacks; a false positive costs more than a miss.
    cw = {1.0: 0.5 * len(ys) / pos, 0.0: 0.5 * len(ys) / (len(ys) - pos) * 1.5}
    w = np.zeros(2**BITS)
    g2 = np.full(2**BITS, 1e-8)
    b, gb2 = 0.0, 1e-8
    order = list(range(len(rows)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            idx = feats[i]
            if len(idx) == 0:
                continue
            scale = 1.0 / np.sqrt(len(idx))
            z = b + w[idx].sum() * scale
            p = 1.0 / (1.0 + np.exp(-z))
            g = (p - ys[i]) * cw[ys[i]]
            grad = g * scale + l2 * w[idx]
            g2[idx] += grad * grad
            w[idx] -= lr * grad / np.sqrt(g2[idx])
            gb2 += g * g
            b -= lr * g / np.sqrt(gb2)
    return w, b


def main() -> None:
    rows = training_texts()
    w, b = train(rows)
    np.savez_compressed(WEIGHTS, weights=w.astype(np.float16), bias=np.float64(b))
    print(f"trained on {len(rows)} texts ({sum(y for _, y in rows)} attacks); "
          f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
