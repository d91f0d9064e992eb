"""The OpenAPI document served at /openapi.json, written out by hand (it is the contract)."""

from __future__ import annotations

from typing import Any

from gateway import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary: str, *, body: bool = False, params: list[str] | None = None,
        admin: bool = False, streams: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {}, **(
                {"text/event-stream": {}} if streams else {})}},
            "default": {"description": "An OpenAI-shaped error",
                        "content": {"application/json": {"schema": _ERROR}}},
        },
    }
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": True}}}}
    if params:
        op["parameters"] = [{"name": p, "in": "query", "required": False,
                             "schema": {"type": "string"}} for p in params]
    if admin:
        op["tags"] = ["admin"]
    return op


def _path_param(op: dict[str, Any], name: str) -> dict[str, Any]:
    op = dict(op)
    op["parameters"] = [*op.get("parameters", []),
                        {"name": name, "in": "path", "required": True,
                         "schema": {"type": "string"}}]
    return op


def openapi_document() -> dict[str, Any]:
    open_op = {"summary": "", "responses": {"200": {"description": "OK"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "LLM guardrail gateway", "version": __version__,
                 "description": "OpenAI-compatible proxy with budgets, guardrails and review."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "properties": {
                    "message": {"type": "string"}, "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]}}}}}},
        },
        "paths": {
            "/v1/chat/completions": {"post": _op("Chat completions (stream or not)", body=True,
                                                 streams=True)},
            "/v1/completions": {"post": _op("Legacy completions", body=True, streams=True)},
            "/v1/embeddings": {"post": _op("Embeddings", body=True)},
            "/v1/models": {"get": _op("Models this key may use")},
            "/healthz": {"get": {**open_op, "summary": "Liveness"}},
            "/readyz": {"get": {**open_op, "summary": "Readiness of the stores"}},
            "/metrics": {"get": {**open_op, "summary": "Prometheus metrics"}},
            "/admin/teams/{team}/budget": {
                "get": _path_param(_op("A team's budget this period", admin=True), "team")},
            "/admin/spend": {"get": _op("Spend grouped by model, key, day or team", admin=True,
                                        params=["team", "group_by", "since", "until"])},
            "/admin/requests": {"get": _op("Logged requests, newest first", admin=True,
                                           params=["team", "flagged", "limit", "cursor"])},
            "/admin/keys": {
                "post": _op("Create a key (shown once)", body=True, admin=True),
                "get": _op("List keys (no secrets)", params=["team"], admin=True)},
            "/admin/keys/{key_id}": {
                "delete": _path_param(_op("Revoke a key", admin=True), "key_id")},
        },
    }
