"""The invisible_text check: zero-width, bidi and tag characters."""

from __future__ import annotations

from gateway.checks.registry import build_check
from tests.checks.helpers import IN

# --- invisible text -----------------------------------------------------------------------------


def test_invisible_text_spans_cover_the_characters() -> None:
    tag_payload = "".join(chr(0xE0000 + ord(c)) for c in "hi")
    text = f"a\u200bb\u202eevil\u202c c{tag_payload}d\ufeff"
    check = build_check("invisible_text", {})
    spans = [text[f.start : f.end] for f in check.scan(text, IN)]
    assert spans == ["\u200b", "\u202e", "\u202c", tag_payload, "\ufeff"]
    stripped = text
    for f in reversed(check.scan(text, IN)):
        stripped = stripped[: f.start] + stripped[f.end :]
    assert stripped == "abevil cd"
    assert check.scan("plain café", IN) == []
