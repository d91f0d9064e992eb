"""presidio's recognizers, built once per NLP configuration, run only where their triggers fire.

presidio-analyzer is heavy to build (hundreds of ms, plus a spaCy model when one is named), so one
``PiiEngine`` per NLP configuration is built lazily and shared by every ``PiiCheck``; the rule's own
settings (entities, threshold, allow list, context words) are applied per call.

Offline by construction:
- ``AnalyzerEngine()`` with defaults downloads a spaCy model; we build a ``no_op`` NLP engine
  (pattern recognizers only) unless ``spacy_model`` names an installed model.
- presidio's e-mail recognizer validates the TLD with ``tldextract``'s global extractor, which
  fetches the public-suffix list on first use (and stalls without network). We swap in a recognizer
  holding its own extractor that reads tldextract's bundled snapshot only, and warm it at build.
- The stock context enhancer needs lemmas, which the no_op engine does not produce, so context words
  would silently do nothing; ``_WindowContextEnhancer`` matches them in the raw text instead.
"""


import copy
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, cast

from presidio_analyzer import (
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, NlpEngineProvider, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)
from tldextract import TLDExtract

from gateway.checks.base import (
    Finding,
    resolve_overlaps,
)
from gateway.checks.pii.address import street_address_recognizer
from gateway.checks.pii.phone import StructuredPhoneRecognizer, unescaped
from gateway.checks.pii.triggers import _TRIGGERS, _fired, _token_start

# presidio's card pattern stops at 17 digits and misses 2-series Mastercard, 15-digit JCB (2131,
# 1800) and 12-digit Maestro (0604...); this one covers 12-19 digits in groups of four with one
# separator throughout (not "12345678-1234", an order number). Luhn still decides.
# RFC 2606 / 6761 names: addresses on them are still addresses a prompt should not leak, and
# presidio would otherwise reject them as having no valid TLD.
_RESERVED_TLDS = ("example", "invalid", "test", "localhost", "local", "internal")
_WORD = re.compile(r"\w+")
_WIDE_CARD = Pattern(
    "Card numbers, 12-19 digits (weak)",
    r"(?<![+\d])\b(?:4\d{3}|5[0-8]\d{2}|6\d{3}|2[2-7]\d{2}|3\d{3}|2131|1800|0604)"
    r"(?P<sep>[- ]?)\d{4}(?:(?P=sep)\d{4}){1,2}(?:(?P=sep)\d{1,3})?\b",
    0.3,
)
# Cheap necessary conditions, one per entity: a recognizer runs only when one of its requested
# entities has its trigger in the text. Each is implied by every pattern of the entity's
_IP_PATTERNS = ("IPv4_mapped", "IPv4_embedded", "IPv4", "IPv6", "IPv6_unspecified")
# Entities whose recognizers' matches never contain white space: run on tokens (``_run``).
_TOKEN_ENTITIES = frozenset({"EMAIL_ADDRESS", "IP_ADDRESS"})
_TOKEN = re.compile(r"\S+")
_NO_NLP_RECOGNIZERS = (PatternRecognizer, StructuredPhoneRecognizer)
_NO_ENHANCEMENT = EntityRecognizer.enhance_using_context
_EMPTY_ARTIFACTS = NlpArtifacts([], cast(Any, []), [], [], None, "en")  # what no_op yields
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
        # Per recognizer, its context words split into single words and phrases, once per call.
        words_of: dict[str | None, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for result in raw_results:
            if result.score >= self.MAX_SCORE:
                continue
            meta = result.recognition_metadata or {}
            key = meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY)
            split = words_of.get(key)
            if split is None:
                recognizer = by_id.get(key)
                words = [w.lower() for w in getattr(recognizer, "context", None) or ()] + extra
                split = words_of[key] = (
                    tuple(cw for cw in words if " " not in cw),
                    tuple(cw for cw in words if " " in cw),
                )
            if (split[0] or split[1]) and self._in_window(text, result.start, result.end, *split):
                result.score = min(
                    self.MAX_SCORE,
                    max(
                        result.score + self.context_similarity_factor,
                        self.min_score_with_context_similarity,
                    ),
                )
        return raw_results

    def _in_window(
        self, text: str, start: int, end: int, single: tuple[str, ...], phrases: tuple[str, ...]
    ) -> bool:
        before = _WORD.findall(unescaped(text[max(0, start - 80) : start]))
        before = before[-self.context_prefix_count :]
        after = _WORD.findall(unescaped(text[end : end + 40]))[: self.context_suffix_count]
        window = [w.lower() for w in before + after]
        if single and any(w.startswith(single) for w in window):
            return True
        if not phrases:
            return False
        joined = " ".join(window)
        return any(cw in joined for cw in phrases)


class PiiEngine:
    """presidio's recognizers, warmed; immutable after ``__init__``, safe to share across threads.

    presidio's ``AnalyzerEngine.analyze`` runs every recognizer of the requested entities, the NLP
    pipeline and the context plumbing on every call. Here the same steps are taken directly, and
    only where they can find something: a recognizer runs only when one of its requested entities
    has its cheap trigger in the text (``_TRIGGERS``: EMAIL needs an '@', CREDIT_CARD twelve digits
    in a run, ...), and the NLP pipeline runs only for recognizers that read its output (spaCy's
    PERSON/LOCATION/...). Phone numbers come from ``_phone.StructuredPhoneRecognizer``, which hands
    only the ambiguous digit runs to presidio's (libphonenumber) recognizer. Recognizers are loaded
    at build time, so concurrent calls only read shared state.
    """

    def __init__(self, spacy_model: str | None = None) -> None:
        self._nlp = _nlp_engine(spacy_model)
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(nlp_engine=self._nlp, languages=["en"])
        registry.remove_recognizer("EmailRecognizer")
        registry.remove_recognizer("PhoneRecognizer")
        extractor = TLDExtract(
            cache_dir=None,
            suffix_list_urls=(),
            fallback_to_snapshot=True,
            extra_suffixes=_RESERVED_TLDS,
        )
        registry.add_recognizer(_OfflineEmailRecognizer(extractor))
        if spacy_model:  # NER on: whole street addresses, which spaCy tags only in part
            registry.add_recognizer(street_address_recognizer())
        registry.add_recognizer(StructuredPhoneRecognizer(PhoneRecognizer()))
        registry.add_recognizer(
            CreditCardRecognizer(patterns=[_WIDE_CARD], name="WideCreditCardRecognizer")
        )
        self._recognizers: tuple[EntityRecognizer, ...] = tuple(
            registry.get_recognizers(language="en", all_fields=True)
        )
        for recognizer in self._recognizers:
            if not recognizer.is_loaded:
                recognizer.load()
                recognizer.is_loaded = True
        self._enhancer = _WindowContextEnhancer()
        # Tokens without ':' can only match the IPv4 pattern of presidio's IP recognizer; the
        # copy (same id, name and context) runs just that one on them.
        self._colon_free: dict[str, EntityRecognizer] = {}
        for recognizer in self._recognizers:
            patterns: list[Pattern] = list(getattr(recognizer, "patterns", None) or ())
            names = sorted(p.name for p in patterns)
            if isinstance(recognizer, IpRecognizer) and names == sorted(_IP_PATTERNS):
                ipv4 = copy.copy(recognizer)
                # (setattr: presidio leaves the attribute untyped, which mypy cannot infer)
                setattr(ipv4, "patterns", [p for p in patterns if p.name == "IPv4"])  # noqa: B010
                self._colon_free[recognizer.id] = ipv4
        self.supported_entities: frozenset[str] = frozenset(
            e for r in self._recognizers for e in r.supported_entities
        )
        self.analyze(_SAMPLE, sorted(self.supported_entities), 0.0)  # warm-up (tldextract, ...)

    def analyze(
        self,
        text: str,
        entities: Sequence[str],
        min_score: float,
        allow_list: Sequence[str] = (),
        context_words: Sequence[str] = (),
    ) -> list[Finding]:
        wanted = list(entities)
        fired = _fired(text, wanted)
        selected = [
            r for r in self._recognizers if any(fired.get(e, False) for e in r.supported_entities)
        ]
        if not selected:
            return []
        artifacts = self._artifacts(text, selected)
        raw: list[RecognizerResult] = []
        per_recognizer: list[tuple[EntityRecognizer, list[RecognizerResult]]] = []
        for recognizer in selected:
            found = self._run(recognizer, text, wanted, artifacts)
            for r in found or ():
                meta = r.recognition_metadata
                if meta is None:
                    meta = r.recognition_metadata = {}
                meta.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, recognizer.id)
                meta.setdefault(
                    RecognizerResult.RECOGNIZER_NAME_KEY, getattr(recognizer, "name", "")
                )
            if found:
                per_recognizer.append((recognizer, found))
                raw.extend(found)
        if not raw:
            return []
        context = list(context_words) or None
        enhanced: list[RecognizerResult] = []
        for recognizer, found in per_recognizer:
            if type(recognizer).enhance_using_context is _NO_ENHANCEMENT:
                enhanced += found  # what the base class's method returns
                continue
            mine = {id(r) for r in found}
            others = [r for r in raw if id(r) not in mine]
            enhanced += recognizer.enhance_using_context(text, found, others, artifacts, context)
        enhanced = self._enhancer.enhance_using_context(
            text, enhanced, artifacts, list(selected), context
        )
        kept = EntityRecognizer.remove_duplicates(
            [r for r in enhanced if r.score >= min_score and r.entity_type in fired]
        )
        allowed = set(allow_list)
        return resolve_overlaps(
            [
                Finding(r.entity_type, r.start, r.end, float(r.score))
                for r in kept
                if text[r.start : r.end] not in allowed
            ]
        )

    def _run(
        self,
        recognizer: EntityRecognizer,
        text: str,
        wanted: list[str],
        artifacts: NlpArtifacts,
    ) -> list[RecognizerResult]:
        """The recognizer's results; e-mail and IP recognizers (whose matches never span white
        space) only see the white-space-delimited tokens holding their trigger, offsets mapped
        back. A token's edges look like the text's own (start/end of string vs. white space) to
        the patterns' \\b and look-arounds, so the results are the same, in a fraction of the time.
        """
        entities = recognizer.supported_entities
        if len(entities) != 1 or entities[0] not in _TOKEN_ENTITIES:
            return list(recognizer.analyze(text=text, entities=wanted, nlp_artifacts=artifacts))
        trigger = _TRIGGERS[entities[0]]
        results: list[RecognizerResult] = []
        done = 0  # end of the last token analysed: each character is walked at most once
        for hit in trigger.finditer(text):
            if hit.start() < done:
                continue
            token = _TOKEN.search(text, _token_start(text, hit.start(), done))
            if token is None:
                continue
            done = token.end()
            word = token.group(0)
            runner = recognizer if ":" in word else self._colon_free.get(recognizer.id, recognizer)
            for r in runner.analyze(word, wanted, artifacts) or ():
                r.start += token.start()
                r.end += token.start()
                results.append(r)
        return results

    def _artifacts(self, text: str, selected: list[EntityRecognizer]) -> NlpArtifacts:
        """The NLP engine's output, computed only when a selected recognizer reads it."""
        if isinstance(self._nlp, NoOpNlpEngine) or all(
            isinstance(r, _NO_NLP_RECOGNIZERS) for r in selected
        ):
            return _EMPTY_ARTIFACTS
        artifacts: NlpArtifacts = self._nlp.process_text(text, "en")
        return artifacts


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

