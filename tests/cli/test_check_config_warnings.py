"""``gateway check-config`` warns about a config that validates but cannot be what was meant
(issue 13, item 8): the example's placeholder keys, a public demo key, an empty provider key.

Warnings go to stderr and keep exit status 0 (``--strict`` makes them an error, for CI): the
example config must still validate on a machine without every provider's key.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

from gateway.cli.preflight import config_warnings
from gateway.settings import DEMO_KEY, load_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]


def check(path: Path, *flags: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "gateway", "check-config", str(path), *flags],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
                          env={**base, **(env or {})})


def test_the_example_with_nothing_set_is_valid_but_warned_about() -> None:
    r = check(ROOT / "config.example.yaml")
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "warning: server.admin_keys[0] is a placeholder" in err
    assert "warning: teams[0].keys[0] is a placeholder" in err
    assert "warning: models[0] (gpt-4o-mini): api_key is empty" in err and "OPENAI_API_KEY" in err
    assert "models[2]" not in err  # a local server without a key is fine
    assert "sk-admin-change-me" not in err  # a key is never printed, not even a placeholder
    strict = check(ROOT / "config.example.yaml", "--strict")
    assert strict.returncode == 1 and "warning" in strict.stderr


def test_keys_set_silence_the_warnings(tmp_path: Path) -> None:
    env = {"GATEWAY_ADMIN_KEY": "sk-a-0123456789abcdef", "OPENAI_API_KEY": "sk-openai-1",
           "ANTHROPIC_API_KEY": "sk-ant-1", "SEARCH_KEY": "sk-s-1",
           "SEARCH_REVIEWER_KEY": "sk-sr-1", "RESEARCH_KEY": "sk-r-1", "NOTEBOOK_KEY": "sk-n-1"}
    settings = load_settings(ROOT / "config.example.yaml", env=env)
    assert config_warnings(settings) == []
    r = check(ROOT / "config.example.yaml", "--strict", env=env)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_a_demo_key_and_an_empty_litellm_key() -> None:
    digest = hashlib.sha256(DEMO_KEY.encode()).hexdigest()
    settings = parse_settings({
        "server": {"admin_keys": ["sk-own-admin-key"]},
        "models": [{"name": "claude", "provider": "anthropic", "api_key": ""},
                   {"name": "gpt", "provider": "openai", "api_base": "https://api.openai.com/v1/"}],
        "teams": [{"name": "t", "keys": [f"sha256:{digest}"]}]})
    warnings = config_warnings(settings)
    assert any(w.startswith("teams[0].keys[0] is the built-in demo key") for w in warnings)
    assert any(w.startswith("models[0] (claude): api_key is empty") and "ANTHROPIC_API_KEY" in w
               for w in warnings)
    assert any(w.startswith("models[1] (gpt): no api_key") for w in warnings)


def test_check_config_output_for_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"server": {"admin_keys": ["sk-admin-change-me"]},
                                    "models": [{"name": "mock", "provider": "mock"}]}))
    r = check(path)
    assert r.returncode == 0 and "server.admin_keys[0] is a placeholder" in r.stderr
