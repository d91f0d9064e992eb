"""The wordlist check: whole words, case-insensitive, from a list or a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.checks.registry import CheckConfigError, build_check
from tests.checks.helpers import labels


def test_wordlist_whole_words_case_insensitive(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# banned\nproject   falcon\n\n", encoding="utf-8")
    check = build_check("wordlist", {"words": ["Acme"], "file": str(words), "label": "CODENAME"})
    text = "ACME ships Project\nFalcon; acmeish and falconry do not count"
    assert labels(check, text) == [("CODENAME", "ACME"), ("CODENAME", "Project\nFalcon")]


def test_wordlist_bad_params(tmp_path: Path) -> None:
    with pytest.raises(CheckConfigError, match="file"):
        build_check("wordlist", {"file": str(tmp_path / "missing.txt")})
    with pytest.raises(CheckConfigError, match="at least one word"):
        build_check("wordlist", {"words": ["  "]})
