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
            "/v1/models/{model_id}": {"get": _path_param(
                _op("One model this key may use (404 model_not_found otherwise)"), "model_id")},
            "/healthz": {"get": {**open_op, "summary": "Liveness"}},
            "/readyz": {"get": {**open_op, "summary": "Readiness of the stores"}},
            "/metrics": {"get": {**open_op, "summary": "Prometheus metrics"}},
            "/admin/teams/{team}/budget": {
                "get": _path_param(_op("A team's budget this period", admin=True), "team"),
                "patch": _path_param(_op("Change a budget at run time (every replica)",
                                         body=True, admin=True), "team")},
            "/admin/flags": {"get": _op("The review queue, newest first", admin=True, params=[
                "team", "status", "check", "rule", "model", "since", "until", "limit", "cursor",
                "counts"])},
            "/admin/flags/export": {"get": _op("Export flagged items (jsonl or csv)", admin=True,
                                               params=["format", "team", "status", "check",
                                                       "rule", "model", "since", "until"])},
            "/admin/flags/{flag_id}": {
                "get": _path_param(_op("One flagged item", admin=True), "flag_id")},
            "/admin/flags/{flag_id}/review": {
                "post": _path_param(_op("Record a verdict: confirmed or dismissed", body=True,
                                        admin=True), "flag_id")},
            "/admin/rules/stats": {"get": _op("Precision of each rule from the verdicts",
                                              admin=True, params=["team"])},
            "/admin/switches": {"get": _op("Kill switches in force", admin=True)},
            "/admin/switches/{kind}/{name}": {
                "put": _path_param(_path_param(_op("Disable a model or a team", admin=True),
                                               "kind"), "name"),
                "delete": _path_param(_path_param(_op("Enable it again", admin=True), "kind"),
                                      "name")},
            "/admin/audit": {"get": _op("The audit trail, newest first", admin=True,
                                        params=["limit", "before", "action"])},
            "/admin/audit/verify": {"get": _op("Verify the audit hash chain", admin=True)},
            "/admin/alerts": {"get": _op("Alerts sent (budget, SLO, drift)", admin=True)},
            "/admin/spend": {"get": _op("Spend grouped by model, key, day or team", admin=True,
                                        params=["team", "group_by", "since", "until",
                                                "forecast"])},
            "/admin/requests": {"get": _op("Logged requests, newest first", admin=True,
                                           params=["team", "flagged", "limit", "cursor"])},
            "/admin/keys": {
                "post": _op("Create a key (shown once)", body=True, admin=True),
                "get": _op("List keys (no secrets)", params=["team"], admin=True)},
            "/admin/keys/{key_id}": {
                "delete": _path_param(_op("Revoke a key", admin=True), "key_id")},
        },
    }
