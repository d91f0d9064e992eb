"""The ``prompt_injection`` check: heuristic evidence combined into a score, and the optional
model tier flagging what resembles the jailbreak families it was trained on.

Each kind of evidence has a weight; the kinds combine as independent evidence (1 - prod(1 - w))
and the text is flagged when the combination reaches ``threshold``. With ``model: true``, a text
of ``model_min_chars`` or more that the heuristics leave below it is also flagged when the model
(``model.py``: character n-grams and the kinds of evidence found) reaches ``model_threshold``.
Figures: bench/ACCURACY.md.
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
            hits.append(Hit(0.9, start, end, "encoded_phrase"))
        elif is_readable(decoded):
            hits.append(Hit(0.6, start, end, "encoded_text"))
    plain, relevant = deobfuscated(text)
    if relevant:
        # Same length: offsets still point at the right characters; otherwise the whole text.
        same = len(plain) == len(text)
        hits += [Hit(h.weight * 0.9, h.start if same else 0, h.end if same else len(text),
                     "obfuscated:" + h.kind) for h in _STRONG.hits(plain)]
    return hits


class PromptInjectionParams(CheckParams):
    # Flag at this combined heuristic score.
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    # The model tier (``model.py``): a text the heuristics leave below ``threshold`` is flagged
    # when the model's probability reaches ``model_threshold``. The model knows the jailbreak
    # families it was trained on and adds recall there; on sources it never saw it is unsure, so
    # its threshold is high. Figures: bench/ACCURACY.md.
    model: bool = False
    model_threshold: float = Field(default=0.995, ge=0.0, le=1.0)
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
        score = combined(hits)
        p = self.params
        if hits and score >= p.threshold:
            spans = sorted({(h.start, h.end) for h in hits})
            return [Finding("PROMPT_INJECTION", s, e, score) for s, e in _merge(spans)]
        if self._model is not None and len(text) >= p.model_min_chars:
            prob = self._model.probability(text, hits)
            if prob >= p.model_threshold:
                return [Finding("PROMPT_INJECTION", 0, len(text), round(prob, 4))]
        return []


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined, so redaction gets disjoint ones."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
