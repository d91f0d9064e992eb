"""Answers in which the model declines: apologies with "can't help", policy disclaimers, redirects.

Refusals are phrased at the start of an answer, so only the opening is read; a phrase found later
("I can't stress enough...") is usually part of a helpful answer. Strong phrases (an explicit
"I can't assist") score 0.9, softer ones (moralising openings that often, not always, replace the
answer) 0.6. Measured on XSTest completions, see bench/ACCURACY.md.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from gateway.checks.base import CheckParams, Finding, ScanContext

_ME = r"(?:I|I'm|I am|I'll|I will|we|we're|we are|as an ai[^.,]{0,40},? I)"
_STRONG = re.compile(
    r"(?i)\b(?:"
    r"(?:I'm|I am|I)\s+(?:really\s+|very\s+|so\s+)?sorry,?\s+(?:but\s+)?(?:I|that|this)"
    r"|sorry,?\s+(?:but\s+)?I\s+(?:can(?:no|')t|won't|am\s+unable|'m\s+unable)"
    rf"|{_ME}\s+(?:cannot|can't|can\s+not|won't|will\s+not|am\s+not\s+able\s+to|'m\s+not\s+able\s+to"
    r"|am\s+unable\s+to|'m\s+unable\s+to|must\s+(?:decline|refuse)|refuse\s+to|do\s+not\s+feel"
    r"\s+comfortable|don't\s+feel\s+comfortable)\s+(?:help|assist|provide|comply|fulfil+|support"
    r"|answer|create|generate|write|give|share|engage|do\s+that|participate|offer|discuss)"
    r"|I\s+must\s+(?:respectfully\s+)?decline"
    r"|(?:can't|cannot|won't)\s+(?:help|assist)\s+with\s+(?:that|this)"
    r"|as\s+an\s+ai(?:\s+language\s+model)?(?:\s+developed\s+by\s+\w+)?,?\s+I\s+(?:cannot|can't"
    r"|won't|am\s+unable)"
    r"|against\s+(?:my|our)\s+(?:guidelines|policies|programming|ethical)"
    r")"
)
_SOFT = re.compile(
    r"(?i)\b(?:"
    r"it(?:'s|\s+is)\s+(?:not\s+appropriate|inappropriate|never\s+(?:acceptable|okay|appropriate))"
    r"|I\s+(?:don't|do\s+not)\s+(?:have\s+(?:access|personal\s+(?:opinions|beliefs))|hold\s+personal"
    r"|believe\s+in|condone|support|promote)"
    r"|I\s+(?:strongly\s+)?(?:condemn|must\s+clarify|must\s+emphasize|would\s+not\s+recommend)"
    r"|I\s+(?:can't|cannot)\s+(?:and\s+won't|in\s+good\s+conscience)"
    r"|(?:is|are)\s+(?:illegal|unethical|harmful)\s+and\s+(?:unacceptable|should\s+not)"
    r"|please\s+(?:seek|reach\s+out\s+to|contact)\s+(?:a\s+|professional|mental|emergency)"
    r"|(?:talk|speak)\s+(?:things\s+over\s+)?with\s+(?:someone|a\s+(?:mental\s+health|trusted))"
    r")"
)


# "..., but I can tell you" / "However, here is": the opening disclaimer is followed by an answer.
_PIVOT = re.compile(
    r"(?i)\b(?:but|however),?\s+(?:I\s+can|here\s+(?:is|are)|you\s+can|there\s+are)"
)
_PIVOT_PENALTY = 0.3


class RefusalParams(CheckParams):
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # How much of the answer's opening is read.
    head_chars: int = Field(default=300, gt=0)


class RefusalCheck:
    """One ``REFUSAL`` finding over the refusal phrase when the answer opens with one."""

    name: ClassVar[str] = "refusal"
    Params: ClassVar[type[RefusalParams]] = RefusalParams
    directions: ClassVar[frozenset[str]] = frozenset({"output"})
    whole_text: ClassVar[bool] = True
    max_match_chars: ClassVar[int] = 0  # whole-text verdict: no window applies

    def __init__(self, params: RefusalParams) -> None:
        self.params = params

    def prefilter(self, text: str) -> bool:
        return bool(text.strip())

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        if not ctx.final:
            return []
        head = text[: self.params.head_chars]
        for pattern, weight in ((_STRONG, 0.9), (_SOFT, 0.6)):
            m = pattern.search(head)
            if m is None:
                continue
            score = weight
            if pattern is _SOFT and _PIVOT.search(text, m.end(), m.end() + 200):
                score -= _PIVOT_PENALTY
            if score >= self.params.threshold:
                return [Finding("REFUSAL", m.start(), m.end(), score)]
            return []
        return []
