"""Train the prompt_injection model tier, choose its threshold, and write its weights.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.eval.train_injection_model``. Data: the ``dev`` and
``tuning`` groups of ``bench/eval/splits.py`` (held-out sets are never read). Logistic regression
by AdaGrad over the features of ``gateway/checks/prompt_injection/model.py`` (hashed character
n-grams and the bins of the heuristics' evidence), fixed seed, so the same data gives the same
file (float16 weights). The threshold is calibrated leaving one set out at a time: a model
trained without a set scores that set, so every text is scored by a model that saw nothing of
its source (a random split would let near-duplicate template variants sit on both sides and
flatter the threshold); the printed ``model_threshold`` is the lowest one at which the model,
on top of the heuristics, flags at most ``TARGET_FPR`` of those unseen benign texts more.
"""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt

from bench.eval.splits import training_rows
from gateway.checks.prompt_injection.check import heuristic_hits
from gateway.checks.prompt_injection.model import (
    BITS,
    N_EXTRA,
    WEIGHTS,
    evidence_features,
    ngram_features,
)
from gateway.checks.prompt_injection.signals import combined

TARGET_FPR = 0.002  # benign texts the model may add, left out, of all dev and tuning benign ones
HEURISTIC_THRESHOLD = 0.6

Feats = tuple[npt.NDArray[np.int64], tuple[int, ...]]


def featurize(rows: list[tuple[str, bool, str]]) -> list[Feats]:
    return [(ngram_features(t), evidence_features(heuristic_hits(t))) for t, _, _ in rows]


def train(feats: list[Feats], ys: npt.NDArray[np.float64], epochs: int = 12, lr: float = 0.5,
          l2: float = 1e-5, benign_weight: float = 1.5, seed: int = 19,
          ) -> tuple[npt.NDArray[np.float64], float]:
    size = 2**BITS + N_EXTRA
    w = np.zeros(size)
    g2 = np.full(size, 1e-8)
    b, gb2 = 0.0, 1e-8
    pos = ys.sum()
    # Class weights: the classes count equally, and a false positive costs more than a miss.
    cw = {1.0: 0.5 * len(ys) / pos, 0.0: 0.5 * len(ys) / (len(ys) - pos) * benign_weight}
    order = list(range(len(feats)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            ngrams, extra = feats[i]
            idx = np.concatenate([ngrams, np.array(extra, dtype=np.int64)])
            scale = np.full(len(idx), 1.0 / np.sqrt(max(len(ngrams), 1)))
            scale[len(ngrams):] = 1.0
            z = b + float((w[idx] * scale).sum())
            p = 1.0 / (1.0 + np.exp(-z))
            g = (p - ys[i]) * cw[ys[i]]
            grad = g * scale + l2 * w[idx]
            g2[idx] += grad * grad
            w[idx] -= lr * grad / np.sqrt(g2[idx])
            gb2 += g * g
            b -= lr * g / np.sqrt(gb2)
    return w, b


def score(w: npt.NDArray[np.float64], b: float, f: Feats) -> float:
    ngrams, extra = f
    z = b + float(w[list(extra)].sum())
    if len(ngrams):
        z += float(w[ngrams].sum()) / float(np.sqrt(len(ngrams)))
    return float(1.0 / (1.0 + np.exp(-z)))


def leave_one_set_out(rows: list[tuple[str, bool, str]], feats: list[Feats],
                      ys: npt.NDArray[np.float64]) -> list[float]:
    probs = [0.0] * len(rows)
    for name in sorted({n for _, _, n in rows}):
        train_idx = [i for i, r in enumerate(rows) if r[2] != name]
        w, b = train([feats[i] for i in train_idx], ys[train_idx])
        for i, r in enumerate(rows):
            if r[2] == name:
                probs[i] = score(w, b, feats[i])
    return probs


def main() -> None:
    rows = training_rows()
    feats = featurize(rows)
    ys = np.array([1.0 if y else 0.0 for _, y, _ in rows])
    probs = leave_one_set_out(rows, feats, ys)
    heur = [combined(heuristic_hits(t)) >= HEURISTIC_THRESHOLD for t, _, _ in rows]
    # The model only adds to what the heuristics flag: calibrate it on what they pass.
    benign = sorted((p for p, y, h in zip(probs, ys, heur, strict=True) if y == 0.0 and not h),
                    reverse=True)
    allowed = int(TARGET_FPR * sum(1 for y in ys if y == 0.0))
    threshold = round(min(0.999, benign[allowed] + 1e-4), 4)
    for name in sorted({n for _, _, n in rows}):
        idx = [i for i, r in enumerate(rows) if r[2] == name]
        h = np.mean([heur[i] for i in idx])
        both = np.mean([heur[i] or probs[i] >= threshold for i in idx])
        print(f"  {name:20} left out: flagged {h:.3f} by the heuristics, {both:.3f} with the model")
    w, b = train(feats, ys)
    np.savez_compressed(WEIGHTS, weights=w.astype(np.float16), bias=np.float64(b))
    print(f"trained on {len(rows)} texts ({int(ys.sum())} attacks); model_threshold {threshold} "
          f"(left out, it adds {allowed} of {sum(1 for y in ys if y == 0.0)} benign at most); "
          f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
