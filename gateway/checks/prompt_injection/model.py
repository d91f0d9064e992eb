"""The optional model tier of ``prompt_injection``: a logistic regression over hashed character
n-grams and the heuristics' evidence, shipped as a small weight file and run with numpy, offline,
in the scan pool.

Trained by ``bench/eval/train_injection_model.py`` on the tuning split of ``bench/eval`` (public
jailbreak corpora, benign instruction, role-play and system-prompt sets; the held-out sets
never). Features: the lower-cased text's UTF-8 bytes, every 3-, 4- and 5-gram hashed into
``2**BITS`` buckets, present or not, scaled by ``1/sqrt(count)``; plus one-hot bins of the
heuristics' combined score and of their strongest hit, so the model learns how far to trust
them. Texts longer than ``MAX_BYTES`` are scored on their head and tail.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gateway.checks.prompt_injection.signals import Hit, combined

BITS = 16
NGRAMS = (3, 4, 5)
MAX_BYTES = 8192
WEIGHTS = Path(__file__).with_name("ngram_lr.npz")
# Bins of the heuristic score and of the strongest hit's weight (upper bounds, exclusive), then
# one bucket per kind of evidence (hashed: a signal's key or a shape's name).
SCORE_BINS = (0.01, 0.3, 0.45, 0.6, 0.75, 0.9, 0.99, 1.01)
KIND_BUCKETS = 256
N_EXTRA = 2 * len(SCORE_BINS) + KIND_BUCKETS
_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads the polynomial's low bits
_SHIFT = np.uint64(64 - BITS)


def ngram_features(text: str) -> npt.NDArray[np.int64]:
    """Bucket indices of the text's distinct byte n-grams."""
    raw = text.lower().encode("utf-8", "replace")
    if len(raw) > MAX_BYTES:
        raw = raw[: MAX_BYTES // 2] + raw[-MAX_BYTES // 2 :]
    b = np.frombuffer(raw, dtype=np.uint8).astype(np.uint64)
    parts = []
    for n in NGRAMS:
        if len(b) < n:
            continue
        h = np.full(len(b) - n + 1, n, dtype=np.uint64)
        for k in range(n):
            h = h * np.uint64(257) + b[k : len(b) - n + 1 + k]
        parts.append((h * _MULT) >> _SHIFT)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(parts)).astype(np.int64)


def _bin(value: float) -> int:
    return next(i for i, top in enumerate(SCORE_BINS) if value < top)


def evidence_features(hits: Sequence[Hit]) -> tuple[int, ...]:
    """Indices (after the n-gram buckets) of the heuristic score's bin, the top hit's bin, and
    each kind of evidence found."""
    score = combined(hits)
    top = max((h.weight for h in hits), default=0.0)
    base = 2**BITS
    kinds = {base + 2 * len(SCORE_BINS) + zlib.crc32(h.kind.encode()) % KIND_BUCKETS
             for h in hits}
    return (base + _bin(score), base + len(SCORE_BINS) + _bin(top), *sorted(kinds))


@dataclass(frozen=True)
class NgramModel:
    weights: npt.NDArray[np.float32]
    bias: float

    def logit(self, text: str, hits: Sequence[Hit]) -> float:
        idx = ngram_features(text)
        z = self.bias + sum(float(self.weights[i]) for i in evidence_features(hits))
        if len(idx):
            z += float(self.weights[idx].sum()) / float(np.sqrt(len(idx)))
        return z

    def probability(self, text: str, hits: Sequence[Hit]) -> float:
        return float(1.0 / (1.0 + np.exp(-self.logit(text, hits))))


@lru_cache(maxsize=1)
def load_model(path: Path = WEIGHTS) -> NgramModel:
    """The shipped weights, read once per process (an immutable object shared by every check)."""
    with np.load(path) as data:
        weights = data["weights"].astype(np.float32)
        return NgramModel(weights, float(data["bias"]))
