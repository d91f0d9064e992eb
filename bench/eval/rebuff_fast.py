"""rebuff's published heuristic injection score, computed exactly but fast.

rebuff 0.1.1 (``rebuff/detect_pi_heuristics.py``) scores a text against 8,800 phrases ("ignore
previous instructions and start over", ...): for every phrase and every window of the text with
as many words, ``matched - ratio / 10``, where ``matched`` is 0 when no word matches at its place
and ``0.5 + 0.1 * min(count, 5)`` otherwise, and ``ratio`` is difflib's similarity of the two
strings; the score is the maximum. Run as written it takes 30 s to 4 min per prompt of 0.5-2 KB.

Since ``ratio`` is in [0, 1] and ``matched`` moves in steps of 0.1, no pair with fewer matched
words (capped at 5) can beat one with more, except at the tie ``ratio == 1`` against ``ratio ==
0``, which cannot happen (a matched word makes the ratio positive). So the maximum is reached in
the pairs with the highest capped count, at their smallest ratio: the counts come from numpy over
word ids, and ``SequenceMatcher`` runs only on those pairs. The keyword list and the normaliser are
rebuff's own functions, read from its pinned wheel; ``bench/accuracy.py`` checks both versions
agree on a sample of the prompts before using this one. ``flagged`` answers the report's question
(score >= 0.75) and skips difflib where the bucket alone decides.
"""

from __future__ import annotations

from collections.abc import Callable
from difflib import SequenceMatcher
from functools import lru_cache

import numpy as np

from bench.eval.sources import _read

MAX_MATCHED = 5


@lru_cache(maxsize=1)
def _rebuff() -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "rebuff_detect_pi_heuristics"}
    source = _read("rebuff", "rebuff/detect_pi_heuristics.py")
    exec(compile(source, "rebuff/detect_pi_heuristics.py", "exec"), namespace)
    return namespace


def original() -> Callable[[str], float]:
    """rebuff's own ``detect_prompt_injection_using_heuristic_on_input``."""
    fn = _rebuff()["detect_prompt_injection_using_heuristic_on_input"]
    assert callable(fn)
    return fn  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _keywords() -> dict[int, tuple[list[str], np.ndarray, dict[str, int]]]:
    """Normalised keyword strings grouped by word count, with their word-id matrices."""
    ns = _rebuff()
    normalize = ns["normalize_string"]
    generate = ns["generate_injection_keywords"]
    assert callable(normalize) and callable(generate)
    vocab: dict[str, int] = {}
    by_len: dict[int, list[str]] = {}
    for k in generate():
        text = normalize(k)
        by_len.setdefault(len(text.split(" ")), []).append(text)
        for w in text.split(" "):
            vocab.setdefault(w, len(vocab) + 1)
    out = {}
    for n, texts in by_len.items():
        ids = np.array([[vocab[w] for w in t.split(" ")] for t in texts], dtype=np.int32)
        out[n] = (texts, ids, vocab)
    return out


def _top_pairs(text: str) -> tuple[int, set[tuple[str, str]]]:
    """The highest capped matched-word count over (window, phrase) pairs, and those pairs."""
    normalize = _rebuff()["normalize_string"]
    assert callable(normalize)
    words = str(normalize(text)).split(" ")
    best_bucket, pairs = 0, []
    for n, (kw_texts, kw_ids, vocab) in _keywords().items():
        if len(words) < n:
            continue
        ids = np.array([vocab.get(w, -1) for w in words], dtype=np.int32)
        windows = np.lib.stride_tricks.sliding_window_view(ids, n)  # (positions, n)
        # Only windows holding a phrase word can match anything.
        starts = np.nonzero((windows >= 0).any(axis=1))[0]
        if len(starts) == 0:
            continue
        counts = np.minimum((windows[starts, None, :] == kw_ids[None, :, :]).sum(-1),
                            MAX_MATCHED)
        top = int(counts.max())
        if top == 0 or top < best_bucket:
            continue
        if top > best_bucket:
            best_bucket, pairs = top, []
        for i, j in zip(*np.nonzero(counts == top), strict=True):
            p = int(starts[i])
            pairs.append((" ".join(words[p : p + n]), kw_texts[j]))
    return best_bucket, set(pairs)


def _matched(bucket: int) -> float:
    return 0.5 + 0.5 * min(bucket / MAX_MATCHED, 1)


def score(text: str) -> float:
    """rebuff's score, exactly (difflib runs on every pair of the top bucket)."""
    bucket, pairs = _top_pairs(text)
    if bucket == 0:
        return 0.0
    ratio = min(SequenceMatcher(None, a, b).ratio() for a, b in pairs)
    return max(0.0, _matched(bucket) - ratio * (1 / (MAX_MATCHED * 2)))


def flagged(text: str, threshold: float = 0.75) -> bool:
    """``score(text) >= threshold``, without difflib where the bucket alone decides: a bucket
    whose score is at least ``threshold`` even at ratio 1, or below it even at ratio 0. On a
    long benign prompt the top bucket (one matched word: "text", "input", "data") holds tens of
    thousands of pairs, and its score (at most 0.6) is under rebuff's 0.75 anyway."""
    bucket, pairs = _top_pairs(text)
    if bucket == 0:
        return threshold <= 0.0
    matched = _matched(bucket)
    if matched - 1 * (1 / (MAX_MATCHED * 2)) >= threshold:
        return True
    if matched < threshold:
        return False
    return any(matched - SequenceMatcher(None, a, b).ratio() * (1 / (MAX_MATCHED * 2))
               >= threshold for a, b in pairs)
