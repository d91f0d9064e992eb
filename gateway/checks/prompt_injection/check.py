"""The ``prompt_injection`` check: heuristic evidence combined into a score, and the optional
model tier deciding what the heuristics leave undecided.

Each signal has a weight; weights combine as independent evidence (1 - prod(1 - w)) and the
text is flagged when the combination reaches ``threshold``. With ``model: true`` the heuristics
decide alone only at ``sure`` or above; every other text of ``model_min_chars`` or more is
decided by the model (``model.py``), which reads the text's character n-grams and the signals
the heuristics found. Figures: bench/ACCURACY.md.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext
from gateway.checks.prompt_injection.decoders import decoded_payloads, deobfuscated, is_readable
from gateway.checks.prompt_injection.model import load_model
from gateway.checks.prompt_injection.phrases import STRONG
from gateway.checks.prompt_injection.signals import Hit, PhraseTable, combined
from gateway.checks.prompt_injection.structure import structure_hits
from gateway.checks.prompt_injection.weak_phrases import WEAK, possessive_data

_STRONG = PhraseTable(STRONG)
_ALL = PhraseTable((*STRONG, *WEAK))


def _has_strong_phrase(text: str) -> bool:
    return any(True for _ in _STRONG.hits(text))


def heuristic_hits(text: str) -> list[Hit]:
    """Every piece of evidence in ``text``: phrases, shapes, and phrases in hidden text."""
    hits = list(_ALL.hits(text))
    hits += possessive_data(text)
    hits += structure_hits(text, _has_strong_phrase)
    for start, end, decoded in decoded_payloads(text):
        # Instructions smuggled past filters in an encoding; any readable sentence hidden that
        # way is suspicious, one that carries an injection phrase is an attack.
        if _has_strong_phrase(decoded):
            hits.append((0.9, start, end))
        elif is_readable(decoded):
            hits.append((0.6, start, end))
    plain, relevant = deobfuscated(text)
    if relevant:
        # Same length: offsets still point at the right characters; otherwise the whole text.
        same = len(plain) == len(text)
        hits += [(w * 0.9, s if same else 0, e if same else len(text))
                 for w, s, e in _STRONG.hits(plain)]
    return hits


class PromptInjectionParams(CheckParams):
    # Heuristics alone: flag at this combined score (model off).
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    # The model tier (``model.py``): the heuristics decide alone only at ``sure`` or above; every
    # other text (the undecided ones, including those with no signal) is flagged when the
    # model's probability reaches ``model_threshold``. Figures: bench/ACCURACY.md.
    model: bool = False
    sure: float = Field(default=0.99, ge=0.0, le=1.0)
    model_threshold: float = Field(default=0.95, ge=0.0, le=1.0)
    # Shorter texts carry too few n-grams for the model; the heuristics decide them alone.
    model_min_chars: int = Field(default=40, ge=1)


class PromptInjectionCheck:
    """``PROMPT_INJECTION`` findings over each matched phrase, scored by combined evidence."""

    name: ClassVar[str] = "prompt_injection"
    Params: ClassVar[type[PromptInjectionParams]] = PromptInjectionParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    # Phrases are short, but encoded payloads are blobs; one longer than this that straddles two
    # stream windows is decoded in neither.
    max_match_chars: ClassVar[int] = 512

    def __init__(self, params: PromptInjectionParams) -> None:
        self.params = params
        self._model = load_model() if params.model else None

    def prefilter(self, text: str) -> bool:
        # No cheaper exact test than the scan's own single pass: common words ("you", "the",
        # "in") start phrase signals, and letter shifts, pig latin and repeated tokens hide in
        # plain words. The shortest text any signal reports is four characters (CJK phrases).
        return len(text) >= 4

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        hits = heuristic_hits(text)
        score = combined(w for w, _, _ in hits)
        p = self.params
        if self._model is not None and score < p.sure and len(text) >= p.model_min_chars:
            # Undecided by the heuristics: the model's verdict, over the whole text.
            prob = self._model.probability(text, hits)
            return [Finding("PROMPT_INJECTION", 0, len(text), round(prob, 4))] if (
                prob >= p.model_threshold) else []
        if not hits or score < (p.sure if self._model is not None else p.threshold):
            return []
        spans = sorted({(s, e) for _, s, e in hits})
        return [Finding("PROMPT_INJECTION", s, e, score) for s, e in _merge(spans)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined, so redaction gets disjoint ones."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
