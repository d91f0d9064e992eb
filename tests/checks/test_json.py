"""The json check: parses, and matches the request's response_format schema."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.checks.base import ScanContext
from gateway.checks.registry import build_check

_SCHEMA_REQUEST = {
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "person",
            "schema": {
                "type": "object",
                "properties": {"age": {"type": "integer"}},
                "required": ["age"],
            },
        },
    }
}


@pytest.mark.parametrize(
    ("text", "request_body", "expected"),
    [
        ('{"age": 3}', {}, []),
        ('{"age": 3', {}, ["INVALID_JSON"]),
        ("```json\n{}\n```", {}, ["INVALID_JSON"]),
        ('{"age": 3}', _SCHEMA_REQUEST, []),
        ('{"age": "3"}', _SCHEMA_REQUEST, ["JSON_SCHEMA_MISMATCH"]),
        ("{}", _SCHEMA_REQUEST, ["JSON_SCHEMA_MISMATCH"]),
    ],
)
def test_json(text: str, request_body: dict[str, Any], expected: list[str]) -> None:
    check = build_check("json", {})
    found = check.scan(text, ScanContext("output", request_body))
    assert [f.label for f in found] == expected
    assert all((f.start, f.end) == (0, len(text)) for f in found)
    assert check.scan('{"age": ', ScanContext("output", request_body, final=False)) == []
