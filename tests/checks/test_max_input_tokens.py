"""The max_input_tokens check."""

from __future__ import annotations

import pytest

from gateway.checks.base import Finding, ScanContext
from gateway.checks.registry import CheckConfigError, build_check

# --- whole-text checks --------------------------------------------------------------------------


def test_max_input_tokens() -> None:
    check = build_check("max_input_tokens", {"max_tokens": 5})
    assert check.scan("one two three", ScanContext("input", {"model": "gpt-4o"})) == []
    text = "one two three four five six seven"
    assert check.scan(text, ScanContext("input", {"model": "gpt-4o"})) == [
        Finding("MAX_INPUT_TOKENS", 0, len(text), 1.0)
    ]
    assert check.directions == frozenset({"input"}) and check.whole_text
    with pytest.raises(CheckConfigError, match="max_tokens"):
        build_check("max_input_tokens", {"max_tokens": 0})
