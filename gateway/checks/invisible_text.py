"""Characters that render as nothing but steer a model: zero-width, bidi overrides, tag characters.

Each finding covers a run of such characters, so redacting the finding strips them. Every
character is detectable on its own, so a run split across stream windows is still caught.
"""

from __future__ import annotations

import re
from typing import ClassVar

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext

_INVISIBLE = re.compile(
    "[\u200b-\u200d\u2060\ufeff"  # zero-width space/non-joiner/joiner, word joiner, BOM
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings/overrides and isolates
    "\U000e0000-\U000e007f]+"  # tag characters (ASCII smuggling)
)


class InvisibleTextParams(CheckParams):
    pass


class InvisibleTextCheck:
    """Reports runs of invisible or direction-changing characters."""

    name: ClassVar[str] = "invisible_text"
    Params: ClassVar[type[InvisibleTextParams]] = InvisibleTextParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    max_match_chars: ClassVar[int] = 1

    def __init__(self, params: InvisibleTextParams) -> None:
        self.params = params

    def prefilter(self, text: str) -> bool:
        return not text.isascii()

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        if text.isascii():
            return []
        return [
            Finding("INVISIBLE_TEXT", m.start(), m.end(), 1.0) for m in _INVISIBLE.finditer(text)
        ]
