"""The optional model tier of ``prompt_injection``: a logistic regression over hashed character
n-grams, shipped as a 128 KB weight file and run with numpy, offline, in the scan pool.

Trained by ``bench/eval/train_injection_model.py`` on public jailbreak corpora and benign
instruction sets (the dev split of ``bench/eval/sources.py``; the held-out sets never). Features:
the lower-cased text's UTF-8 bytes, every 3-, 4- and 5-gram hashed into ``2**16`` buckets, present
or not, scaled by ``1/sqrt(count)``. Inference is a handful of vectorised numpy operations per text:
about 0.1 ms per KB. Texts longer than ``MAX_BYTES`` are scored on their head and tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

BITS = 16
NGRAMS = (3, 4, 5)
MAX_BYTES = 8192
WEIGHTS = Path(__file__).with_name("ngram_lr.npz")
_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads the polynomial's low bits
_SHIFT = np.uint64(64 - BITS)


def features(text: str) -> npt.NDArray[np.int64]:
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


@dataclass(frozen=True)
class NgramModel:
    weights: npt.NDArray[np.float32]
    bias: float

    def probability(self, text: str) -> float:
        idx = features(text)
        if len(idx) == 0:
            return 0.0
        z = self.bias + float(self.weights[idx].sum()) / float(np.sqrt(len(idx)))
        return float(1.0 / (1.0 + np.exp(-z)))


@lru_cache(maxsize=1)
def load_model(path: Path = WEIGHTS) -> NgramModel:
    """The shipped weights, read once per process (an immutable object shared by every check)."""
    with np.load(path) as data:
        return NgramModel(data["weights"].astype(np.float32), float(data["bias"]))
