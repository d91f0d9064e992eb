"""Operator-supplied regular expressions, compiled once when the policy is loaded."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext, resolve_overlaps

_FLAGS = {
    "IGNORECASE": re.IGNORECASE,
    "MULTILINE": re.MULTILINE,
    "DOTALL": re.DOTALL,
    "ASCII": re.ASCII,
    "VERBOSE": re.VERBOSE,
}


class RegexParams(CheckParams):
    patterns: tuple[str, ...] = Field(min_length=1)
    # Defaults to the rule's name (``internal-hosts`` -> ``INTERNAL_HOSTS``), see registry.
    label: str = "REGEX"
    flags: tuple[str, ...] = ()

    @field_validator("patterns")
    @classmethod
    def _compilable(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, p in enumerate(v):
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"patterns[{i}] {p!r} is not a valid regex: {exc}") from exc
            if re.fullmatch(p, ""):
                raise ValueError(f"patterns[{i}] {p!r} matches the empty string")
        return v

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(f.upper() for f in v)
        unknown = [f for f in names if f not in _FLAGS]
        if unknown:
            raise ValueError(f"unknown flags {unknown} (known: {', '.join(_FLAGS)})")
        return names


class RegexCheck:
    """Reports every match of any pattern under one label."""

    name: ClassVar[str] = "regex"
    Params: ClassVar[type[RegexParams]] = RegexParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    # Patterns are arbitrary; matches longer than this may be missed when straddling stream windows.
    max_match_chars: ClassVar[int] = 256

    def __init__(self, params: RegexParams) -> None:
        self.params = params
        flags = 0
        for f in params.flags:
            flags |= _FLAGS[f]
        self._patterns = tuple(re.compile(p, flags) for p in params.patterns)

    def prefilter(self, text: str) -> bool:
        return bool(text)

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        label = self.params.label
        found = [
            Finding(label, m.start(), m.end(), 1.0)
            for p in self._patterns
            for m in p.finditer(text)
            if m.end() > m.start()
        ]
        return resolve_overlaps(found)
