"""The Check interface: a check reports what it found (label, span, score), never what to do.

Actions are decided by the policy and applied in one place (``gateway.enforce``), so a check can be
reused by any rule and by third-party packages registered under the ``gateway.checks`` entry-point
group (see ``registry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

Direction = Literal["input", "output"]
BOTH_DIRECTIONS: frozenset[str] = frozenset({"input", "output"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: ``text[start:end]`` is what was found."""

    label: str  # EMAIL_ADDRESS, CREDIT_CARD, AWS_ACCESS_KEY, PROMPT_INJECTION, ...
    start: int  # character (not byte) offsets into the scanned text
    end: int
    score: float  # 0..1
    # The value looks like a documentation example or placeholder (``AKIAIOSFODNN7EXAMPLE``,
    # ``ghp_EXAMPLE...``) yet has the full shape of the real thing. Checks report it; the policy
    # decides (``enforce``: ``mask``/``redact`` still replace it, ``block``/``flag`` pass it).
    example: bool = False


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a check may know besides the text itself."""

    direction: Direction
    # The client's request body (``response_format`` for ``json``, ``model`` for token counts).
    request: Mapping[str, Any] = field(default_factory=dict)
    # False for a partial stream window; whole-text checks only run when final.
    final: bool = True


class ParamError(ValueError):
    """A parameter value the check cannot use, found when building it (not by pydantic)."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(message)


class CheckParams(BaseModel):
    """Base of every check's own parameters: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Check(Protocol):
    """A detector. Instances are built once per policy and shared by concurrent requests."""

    name: ClassVar[str]  # registry name == module name: pii, secrets, regex, ...
    Params: ClassVar[type[BaseModel]]  # pydantic, extra="forbid", frozen
    directions: ClassVar[frozenset[str]]  # {"input"}, {"output"} or both
    whole_text: ClassVar[bool]  # needs the complete text (json, refusal, max_input_tokens)
    # Longest match it can report: the stream hold-back window must be at least this long
    # for a match that straddles two windows to be seen whole.
    max_match_chars: ClassVar[int]

    def __init__(self, params: BaseModel) -> None: ...

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        """Synchronous, CPU-bound and thread-safe: it runs in a worker thread."""
        ...

    def prefilter(self, text: str) -> bool:
        """Cheap test: False means ``scan`` would certainly find nothing in ``text``."""
        ...


def whole_span(label: str, text: str, score: float = 1.0) -> list[Finding]:
    """A finding covering the whole text, for verdicts about the text as a whole."""
    return [Finding(label, 0, len(text), score)]


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep, among overlapping findings, the highest-scoring (then longest) one; sort by start.

    Redaction and masking need disjoint spans; the greedy choice keeps the most confident reading
    of each stretch of text (an e-mail over the URL found inside it, a card over a phone number).
    """
    ranked = sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start))
    kept: list[Finding] = []
    for f in ranked:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
