"""The admin API from a terminal: a small HTTP client on the standard library (fast to start).

The URL and key come from ``--url`` / ``--key`` or ``GATEWAY_URL`` / ``GATEWAY_ADMIN_KEY``; the
key is sent only in the Authorization header and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:4000"
TIMEOUT_S = 30.0


class CliError(Exception):
    """A failure to report in one line on stderr (exit status 1)."""


def admin_api(args: argparse.Namespace) -> AdminApi:
    """The client for ``--url`` / ``--key`` (or their environment variables)."""
    return AdminApi(args.url or os.environ.get("GATEWAY_URL") or DEFAULT_URL,
                    args.key or os.environ.get("GATEWAY_ADMIN_KEY") or "")


class AdminApi:
    def __init__(self, url: str, key: str) -> None:
        if not key:
            raise CliError("no key: pass --key or set GATEWAY_ADMIN_KEY")
        self.url = url.rstrip("/")
        self._key = key

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None) -> bytes:
        query = {k: str(v) for k, v in (params or {}).items() if v not in (None, "")}
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={
            "authorization": f"Bearer {self._key}", "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                payload: bytes = resp.read()
                return payload
        except urllib.error.HTTPError as exc:
            raise CliError(f"{exc.code}: {_error_message(exc.read())}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"cannot reach {self.url}: {reason}") from None

    def json(self, method: str, path: str, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        return json.loads(self.request(method, path, params, body))


def _error_message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200] or "request failed"
