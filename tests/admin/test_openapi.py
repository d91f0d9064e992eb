"""The served OpenAPI document is valid and names every public route."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from openapi_spec_validator import validate
from starlette.routing import Mount, Route

from tests.gateway_runner import run_gateway
from tests.helpers import base_config


def test_openapi_is_valid_and_complete(tmp_path: Path) -> None:
    with run_gateway(base_config("http://127.0.0.1:9/v1", tmp_path)) as gw:
        doc = httpx.get(gw.url + "/openapi.json").json()
        validate(doc)
        # Path convertors ({model_id:path}) are Starlette's, not OpenAPI's.
        routes = [re.sub(r"(\{\w+):\w+\}", r"\1}", r.path) for r in gw.app.routes
                  if isinstance(r, Route) and not isinstance(r, Mount)]
    documented = set(doc["paths"])
    public = {p for p in routes if p.startswith(("/v1/", "/admin/"))
              or p in ("/healthz", "/readyz", "/metrics")}
    assert public - documented == set()
