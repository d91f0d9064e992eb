"""The regex check: labels, flags, overlaps and parameter errors."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.checks.registry import CheckConfigError, build_check
from tests.checks.helpers import labels

# --- regex and wordlist -------------------------------------------------------------------------


def test_regex_label_defaults_to_rule_name() -> None:
    check = build_check(
        "regex", {"patterns": [r"\b[a-z0-9-]+\.corp\.example\.com\b"]}, rule_name="internal-hosts"
    )
    assert labels(check, "see db-1.corp.example.com now") == [
        ("INTERNAL_HOSTS", "db-1.corp.example.com")
    ]


def test_regex_flags_and_overlaps() -> None:
    check = build_check("regex", {"patterns": ["abc", "abcdef"], "flags": ["ignorecase"]})
    assert labels(check, "xxABCDEFxx") == [("REGEX", "ABCDEF")]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"patterns": ["(unclosed"]}, "patterns"),
        ({"patterns": ["a*"]}, "patterns"),  # matches the empty string
        ({"patterns": []}, "patterns"),
        ({"patterns": ["a"], "flags": ["NOPE"]}, "flags"),
        ({}, "patterns"),
    ],
)
def test_regex_bad_params(params: dict[str, Any], param: str) -> None:
    with pytest.raises(CheckConfigError) as err:
        build_check("regex", params)
    assert err.value.param == param
