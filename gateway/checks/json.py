"""Answers that must be JSON: the text parses, and matches the request's ``json_schema`` if any.

The module is named ``json`` after its registry name; with absolute imports it does not shadow the
standard library, but it parses with orjson and nothing in this package imports stdlib ``json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from gateway.checks.base import CheckParams, Finding, ScanContext, whole_span


class JsonParams(CheckParams):
    # Check the schema of ``response_format: {type: json_schema}`` requests, not just syntax.
    validate_schema: bool = True


def _schema(request: Mapping[str, Any]) -> dict[str, Any] | None:
    fmt = request.get("response_format")
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return dict(schema) if isinstance(schema, Mapping) else None


class JsonCheck:
    """``INVALID_JSON`` or ``JSON_SCHEMA_MISMATCH`` over the whole answer."""

    name: ClassVar[str] = "json"
    Params: ClassVar[type[JsonParams]] = JsonParams
    directions: ClassVar[frozenset[str]] = frozenset({"output"})
    whole_text: ClassVar[bool] = True
    max_match_chars: ClassVar[int] = 0  # whole-text verdict: no window applies

    def __init__(self, params: JsonParams) -> None:
        self.params = params

    def prefilter(self, text: str) -> bool:
        return True  # the empty answer is not JSON either

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        if not ctx.final:
            return []
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return whole_span("INVALID_JSON", text)
        schema = _schema(ctx.request) if self.params.validate_schema else None
        if schema is None:
            return []
        validator = validator_for(schema, default=Draft202012Validator)
        try:
            validator.check_schema(schema)
        except SchemaError:
            return []  # the client's schema is broken; the provider already accepted or ignored it
        error = next(validator(schema).iter_errors(value), None)
        return [] if error is None else whole_span("JSON_SCHEMA_MISMATCH", text)
