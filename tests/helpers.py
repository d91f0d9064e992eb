"""Small builders shared by the tests: a typical configuration pointed at a fake upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CLIENT_KEY = "sk-test-client"
OTHER_KEY = "sk-test-other"
ADMIN_KEY = "sk-test-admin"
REVIEWER_KEY = "sk-test-reviewer"


def base_config(upstream_url: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "server": {"admin_keys": [ADMIN_KEY], "max_body_bytes": 64 * 1024},
        "stores": {"budgets": "memory://", "logs": f"sqlite:///{tmp_path}/gw.db"},
        "models": [
            {"name": "gpt-test", "provider": "openai", "model": "upstream-gpt",
             "api_base": upstream_url, "api_key": "sk-upstream-secret", "timeout_s": 2,
             "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
            {"name": "embed-test", "provider": "openai", "model": "upstream-embed",
             "api_base": upstream_url, "api_key": "sk-upstream-secret",
             "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.0}},
            {"name": "forbidden-model", "provider": "mock"},
            {"name": "mock", "provider": "mock"},
        ],
        "teams": [
            {"name": "search", "keys": [CLIENT_KEY], "reviewer_keys": [REVIEWER_KEY],
             "models": ["gpt-test", "embed-test", "mock"],
             "budget": {"usd": 100, "period": "month"}},
            {"name": "other", "keys": [OTHER_KEY]},
        ],
    }
    cfg.update(overrides)
    return cfg
