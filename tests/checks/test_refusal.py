"""The refusal check."""

from __future__ import annotations

import pytest

from gateway.checks.base import ScanContext
from gateway.checks.registry import build_check
from tests.checks.helpers import OUT


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("Sorry, but I can't assist with that.", True),
        ("I'm sorry, but I cannot help with creating malware.", True),
        ("As an AI language model, I cannot provide that information.", True),
        ("I must decline this request.", True),
        ("Sure! Here is how to kill a Python process: use `kill -9 <pid>`.", False),
        ("As an AI, I don't have personal opinions, but I can tell you that it is a joke.", False),
        ("Step 1: preheat the oven. I can't stress enough how important that is.", False),
    ],
)
def test_refusal(text: str, refused: bool) -> None:
    found = build_check("refusal", {}).scan(text, OUT)
    assert bool(found) is refused
    assert build_check("refusal", {}).scan(text, ScanContext("output", final=False)) == []
