"""Near-duplicate removal between the tuning and held-out splits, on the whole text.

Each text becomes the set of its word 5-gram shingles (lower-cased alphanumeric words; a text of
fewer than five words is one shingle). A held-out text is a near-duplicate of a tuning text when
their shingle sets have a Jaccard similarity of at least ``JACCARD`` **or** when at least
``CONTAINMENT`` of the smaller set lies in the other (one text embedded in a longer one: a
jailbreak template with a different request, or with a preamble added). The comparison is exact:
an inverted index from shingle to texts finds every pair that shares one, so no pair is missed
the way a sampled MinHash can miss one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

JACCARD = 0.5
CONTAINMENT = 0.8
_WORD = re.compile(r"[a-z0-9]+")


def shingles(text: str, n: int = 5) -> frozenset[str]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class DedupResult:
    kept: list[int]  # indices of held-out texts with no near-duplicate
    dropped: int  # near-duplicates of a tuning text
    dropped_within: int  # near-duplicates of an earlier held-out text of the same set


class ShingleIndex:
    """Shingle sets of a reference corpus, with an inverted index for exact overlap counts."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.sets: list[frozenset[str]] = []
        self.postings: dict[str, list[int]] = {}
        for t in texts:
            self.add(t)

    def add(self, text: str) -> None:
        i = len(self.sets)
        s = shingles(text)
        self.sets.append(s)
        for sh in s:
            self.postings.setdefault(sh, []).append(i)

    def near_duplicate(self, text: str) -> bool:
        s = shingles(text)
        shared: Counter[int] = Counter()
        for sh in s:
            shared.update(self.postings.get(sh, ()))
        for j, inter in shared.items():
            other = self.sets[j]
            union = len(s) + len(other) - inter
            if inter / union >= JACCARD or inter / min(len(s), len(other)) >= CONTAINMENT:
                return True
        return False


def dedup_against(held: Sequence[str], tuning: ShingleIndex) -> DedupResult:
    """The held-out texts that are near-duplicates neither of a tuning text nor of each other."""
    kept: list[int] = []
    own = ShingleIndex(())
    dropped = within = 0
    for i, text in enumerate(held):
        if tuning.near_duplicate(text):
            dropped += 1
        elif own.near_duplicate(text):
            within += 1
        else:
            kept.append(i)
            own.add(text)
    return DedupResult(kept, dropped, within)
