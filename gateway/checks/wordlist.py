"""Listed words and phrases, matched as whole words regardless of case, in one compiled pass."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import PrivateAttr, model_validator

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext

MAX_WORD_CHARS = 64


def _read_words(path: Path) -> list[str]:
    """One word or phrase per line; blank lines and ``#`` comments are skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


class WordlistParams(CheckParams):
    words: tuple[str, ...] = ()
    file: Path | None = None
    label: str = "WORDLIST"
    # Filled from ``words`` and ``file`` at validation, so a bad file fails when the policy loads.
    _all_words: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _collect(self) -> WordlistParams:
        words = [w.strip() for w in self.words if w.strip()]
        if self.file is not None:
            try:
                words += _read_words(self.file)
            except OSError as exc:
                raise ValueError(f"file: cannot read {self.file}: {exc.strerror}") from exc
        if not words:
            raise ValueError("give words and/or a file with at least one word")
        too_long = [w for w in words if len(w) > MAX_WORD_CHARS]
        if too_long:
            raise ValueError(f"words longer than {MAX_WORD_CHARS} characters: {too_long[:3]}")
        self._all_words = tuple(dict.fromkeys(w.lower() for w in words))
        return self

    @property
    def all_words(self) -> tuple[str, ...]:
        return self._all_words


class WordlistCheck:
    """Whole-word, case-insensitive matches of a list; longer phrases win over their prefixes."""

    name: ClassVar[str] = "wordlist"
    Params: ClassVar[type[WordlistParams]] = WordlistParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    max_match_chars: ClassVar[int] = MAX_WORD_CHARS

    def __init__(self, params: WordlistParams) -> None:
        self.params = params
        # Longest first so "credit card number" is preferred to "credit card" at the same place;
        # whitespace inside a phrase matches any run of whitespace.
        alternatives = sorted(params.all_words, key=len, reverse=True)
        body = "|".join(r"\s+".join(map(re.escape, w.split())) for w in alternatives)
        self._pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)

    def prefilter(self, text: str) -> bool:
        return bool(text)

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        label = self.params.label
        return [Finding(label, m.start(), m.end(), 1.0) for m in self._pattern.finditer(text)]
