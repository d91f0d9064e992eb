"""Personal data (e-mail, phone, card, SSN, IBAN, IP; names with a spaCy model) via presidio.

presidio-analyzer is heavy to build (hundreds of ms, plus a spaCy model when one is named), so one
``PiiEngine`` per NLP configuration is built lazily and shared by every ``PiiCheck``; the rule's own
settings (entities, threshold, allow list, context words) are applied per call. Only this module
imports presidio.

Offline by construction:
- ``AnalyzerEngine()`` with defaults downloads a spaCy model; we build a ``no_op`` NLP engine
  (pattern recognizers only) unless ``spacy_model`` names an installed model.
- presidio's e-mail recognizer validates the TLD with ``tldextract``'s global extractor, which
  fetches the public-suffix list on first use (and stalls without network). We swap in a recognizer
  holding its own extractor that reads tldextract's bundled snapshot only, and warm it at build.
- The stock context enhancer needs lemmas, which the no_op engine does not produce, so context words
  would silently do nothing; ``_WindowContextEnhancer`` matches them in the raw text instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, NlpEngineProvider, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, EmailRecognizer
from pydantic import Field, field_validator
from tldextract import TLDExtract

from gateway.checks.base import (
    BOTH_DIRECTIONS,
    CheckParams,
    Finding,
    ParamError,
    ScanContext,
    resolve_overlaps,
)

DEFAULT_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
)
# RFC 2606 / 6761 names: addresses on them are still addresses a prompt should not leak, and
# presidio would otherwise reject them as having no valid TLD.
_RESERVED_TLDS = ("example", "invalid", "test", "localhost", "local", "internal")
# Entities whose every match contains a digit or an "@" (or "::" for IPv6): lets prefilter skip
# presidio entirely for text without them.
_DIGIT_OR_AT_ENTITIES = frozenset(
    {*DEFAULT_ENTITIES, "UK_NHS", "US_ITIN", "US_BANK_NUMBER", "US_PASSPORT", "CRYPTO"}
)
_DIGIT_OR_AT = re.compile(r"[@\d]|::")
_WORD = re.compile(r"\w+")
# presidio's card pattern stops at 17 digits and misses 2-series Mastercard, 15-digit JCB (2131,
# 1800) and 12-digit Maestro; this one covers 12-19 digits in groups. Luhn still decides.
_WIDE_CARD = Pattern(
    "Card numbers, 12-19 digits (weak)",
    r"(?<![+\d])\b(?:4\d{3}|5[0-8]\d{2}|6\d{3}|2[2-7]\d{2}|3\d{3}|2131|1800)(?:[- ]?\d{4}){2,3}"
    r"(?:[- ]?\d{1,3})?\b",
    0.3,
)
_SAMPLE = (
    "Mail jane.doe@acme.com or ops@corp.example, call 212-555-0123, card 4111 1111 1111 1111, "
    "SSN 219-09-9999, IBAN GB82 WEST 1234 5698 7654 32, IP 192.168.10.4 and 2001:db8::1. "
    "John Smith lives in Paris."
)


class _OfflineEmailRecognizer(EmailRecognizer):
    """presidio's e-mail recognizer with a private, snapshot-only TLD extractor."""

    def __init__(self, extractor: TLDExtract) -> None:
        super().__init__()
        self._extractor = extractor

    def validate_result(self, pattern_text: str) -> bool:
        return self._extractor(pattern_text).fqdn != ""


class _WindowContextEnhancer(ContextAwareEnhancer):
    """Raise a result's score when a context word occurs among the few words around it.

    Same arithmetic as presidio's lemma enhancer (+0.35, at least 0.4, at most 1.0), but on the raw
    text, so it works with the no_op engine. Words are the recognizer's own context plus the
    ``context`` passed to ``analyze`` (the rule's ``context_words``); a word matches a text word it
    starts (``phone`` matches ``phones``), a phrase matches as a substring of the window.
    """

    def __init__(self) -> None:
        super().__init__(
            context_similarity_factor=0.35,
            min_score_with_context_similarity=0.4,
            context_prefix_count=5,
            context_suffix_count=2,
        )

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        by_id = {r.id: r for r in recognizers}
        extra = [w.lower() for w in context or ()]
        for result in raw_results:
            if result.score >= self.MAX_SCORE:
                continue
            meta = result.recognition_metadata or {}
            recognizer = by_id.get(meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            words = [w.lower() for w in getattr(recognizer, "context", None) or ()] + extra
            if words and self._in_window(text, result.start, result.end, words):
                result.score = min(
                    self.MAX_SCORE,
                    max(
                        result.score + self.context_similarity_factor,
                        self.min_score_with_context_similarity,
                    ),
                )
        return raw_results

    def _in_window(self, text: str, start: int, end: int, words: list[str]) -> bool:
        before = _WORD.findall(text[max(0, start - 80) : start])[-self.context_prefix_count :]
        after = _WORD.findall(text[end : end + 40])[: self.context_suffix_count]
        window = [w.lower() for w in before + after]
        joined = " ".join(window)
        return any(
            (" " in cw and cw in joined) or any(w.startswith(cw) for w in window) for cw in words
        )


class PiiEngine:
    """A warmed presidio analyzer; immutable after ``__init__`` and safe to share across threads.

    presidio loads recognizers lazily on first use (an unguarded check-then-set); the warm-up
    analysis at build time does that once, so later concurrent calls only read shared state.
    """

    def __init__(self, spacy_model: str | None = None) -> None:
        nlp_engine = _nlp_engine(spacy_model)
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(nlp_engine=nlp_engine, languages=["en"])
        registry.remove_recognizer("EmailRecognizer")
        extractor = TLDExtract(
            cache_dir=None,
            suffix_list_urls=(),
            fallback_to_snapshot=True,
            extra_suffixes=_RESERVED_TLDS,
        )
        registry.add_recognizer(_OfflineEmailRecognizer(extractor))
        registry.add_recognizer(
            CreditCardRecognizer(patterns=[_WIDE_CARD], name="WideCreditCardRecognizer")
        )
        self._analyzer = AnalyzerEngine(
            nlp_engine=nlp_engine,
            registry=registry,
            supported_languages=["en"],
            context_aware_enhancer=_WindowContextEnhancer(),
        )
        self.supported_entities: frozenset[str] = frozenset(
            self._analyzer.get_supported_entities(language="en")
        )
        self._analyzer.analyze(_SAMPLE, language="en")  # warm-up, see class docstring

    def analyze(
        self,
        text: str,
        entities: Sequence[str],
        min_score: float,
        allow_list: Sequence[str] = (),
        context_words: Sequence[str] = (),
    ) -> list[Finding]:
        results = self._analyzer.analyze(
            text,
            language="en",
            entities=list(entities),
            score_threshold=min_score,
            allow_list=list(allow_list) or None,
            context=list(context_words) or None,
        )
        return resolve_overlaps(
            [Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results]
        )


def _nlp_engine(spacy_model: str | None) -> NlpEngine:
    conf: dict[str, Any]
    if spacy_model:
        model = {"lang_code": "en", "model_name": spacy_model}
        conf = {"nlp_engine_name": "spacy", "models": [model]}
        engine: NlpEngine = NlpEngineProvider(nlp_configuration=conf).create_engine()
        return engine
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    engine.load()
    return engine


@lru_cache(maxsize=4)
def pii_engine(spacy_model: str | None = None) -> PiiEngine:
    """The shared engine for an NLP configuration, built on first request.

    A process-wide cache of immutable engines (see ``PiiEngine``): building one costs far more than
    any scan, and policies reloaded at run time must not rebuild it.
    """
    return PiiEngine(spacy_model)


class PiiParams(CheckParams):
    entities: tuple[str, ...] = Field(default=DEFAULT_ENTITIES, min_length=1)
    # 0.4 keeps phone numbers, which presidio scores 0.4 without context words, and drops the
    # 0.05-0.3 "weak" SSN/bank-number patterns (nine bare digits); see bench/ACCURACY.md.
    min_score: float = Field(default=0.4, ge=0.0, le=1.0)
    allow_list: tuple[str, ...] = ()
    context_words: tuple[str, ...] = ()
    # An installed spaCy model (the official ``en_core_web_sm``) adds PERSON, LOCATION, NRP, ...
    spacy_model: str | None = None

    @field_validator("entities")
    @classmethod
    def _upper(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e.strip().upper() for e in v)


class PiiCheck:
    """Finds personal data with presidio's recognizers; overlapping findings keep the best one."""

    name: ClassVar[str] = "pii"
    Params: ClassVar[type[PiiParams]] = PiiParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    # Practical e-mail addresses (64-char local part + domain) and IBANs with spaces fit in 128;
    # RFC-maximal 254-char addresses would need a larger hold-back.
    max_match_chars: ClassVar[int] = 128

    def __init__(self, params: PiiParams) -> None:
        self.params = params
        try:
            self._engine = pii_engine(params.spacy_model)
        except OSError as exc:  # spaCy: model not installed
            raise ParamError("spacy_model", f"cannot load spaCy model: {exc}") from exc
        unknown = sorted(set(params.entities) - self._engine.supported_entities)
        if unknown:
            known = ", ".join(sorted(self._engine.supported_entities))
            raise ParamError("entities", f"unsupported {unknown} (supported: {known})")
        self._cheap = set(params.entities) <= _DIGIT_OR_AT_ENTITIES

    def prefilter(self, text: str) -> bool:
        return not self._cheap or _DIGIT_OR_AT.search(text) is not None

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        if not self.prefilter(text):
            return []
        p = self.params
        return self._engine.analyze(text, p.entities, p.min_score, p.allow_list, p.context_words)
