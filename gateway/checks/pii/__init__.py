"""Personal data (e-mail, phone, card, SSN, IBAN, IP; names and street addresses with a spaCy
model) via presidio's recognizers: the ``pii`` check and its parameters.

The recognizers live in ``engine`` (built once per NLP configuration and shared), their cheap
triggers in ``triggers``, phone numbers in ``phone``. Only this package imports presidio.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ParamError, ScanContext
from gateway.checks.pii.engine import pii_engine
from gateway.checks.pii.triggers import (
    _DIGIT,
    _DIGIT_ENTITIES,
    _TRIGGERS,
    DEFAULT_ENTITIES,
    _combined_trigger,
    _fired,
)

__all__ = ["DEFAULT_ENTITIES", "PiiCheck", "PiiParams", "pii_engine"]




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
        # One alternation of the entities' triggers: False means no recognizer would run.
        self._trigger = _combined_trigger(params.entities)
        self._digit_gated = any(self._fired_by_digit(e) for e in params.entities)

    def prefilter(self, text: str) -> bool:
        # Same answer as ``self._trigger.search(text)``, without trying the alternation everywhere.
        if self._trigger is None:
            return True
        entities = self.params.entities
        if self._digit_gated and _DIGIT.search(text) is not None:
            return True
        return any(_fired(text, [e for e in entities if e in _TRIGGERS], first=True).values())

    @staticmethod
    def _fired_by_digit(entity: str) -> bool:
        return entity in _DIGIT_ENTITIES and entity not in _TRIGGERS

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        # ``analyze`` runs no recognizer when no trigger fires, which is ``prefilter``'s answer
        # unless a digit entity without a trigger of its own was asked for.
        if self._digit_gated and not self.prefilter(text):
            return []
        p = self.params
        return self._engine.analyze(text, p.entities, p.min_score, p.allow_list, p.context_words)
