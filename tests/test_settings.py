"""Configuration: interpolation, validation errors that name the YAML path, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.settings import (
    ConfigError,
    default_settings,
    interpolate,
    key_digest,
    load_settings,
    parse_settings,
)

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads() -> None:
    s = load_settings(ROOT / "config.example.yaml", env={})
    names = {m.name: m.provider for m in s.models}
    assert names == {"gpt-4o-mini": "openai", "claude-haiku": "anthropic",
                     "llama-local": "openai", "mock": "mock"}
    assert s.teams[0].budget is not None and s.teams[0].budget.usd == 200
    assert s.policies_dir == str((ROOT / "policies").resolve())


def test_interpolation() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert interpolate("x${A}y ${B:-dflt} ${EMPTY:-z}", env) == "x1y dflt "
    with pytest.raises(ConfigError, match="MISSING"):
        interpolate("${MISSING}", env)


@pytest.mark.parametrize(("doc", "path"), [
    ({"teams": [{"name": "a", "budget": {"usd": -1}}]}, "teams[0].budget.usd"),
    ({"teams": [{"name": "a", "budget": {"period": "year"}}]}, "teams[0].budget.period"),
    ({"server": {"port": "http"}}, "server.port"),
    ({"server": {"portt": 1}}, "server.portt"),
    ({"models": [{"name": "m"}]}, "models[0].provider"),
    ({"stores": {"logs": "mysql://x"}}, "stores.logs"),
    ({"teams": [{"name": "a", "keys": ["sha256:xyz"]}]}, "teams[0].keys"),
    ({"teams": [{"name": "a", "keys": [""]}]}, "teams[0].keys"),
])
def test_errors_name_the_yaml_path(doc: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_settings(doc)
    assert f"{path}:" in str(e.value)


def test_cross_checks() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        parse_settings({"teams": [{"name": "a", "models": ["nope"]}]})
    with pytest.raises(ConfigError, match="duplicate model"):
        parse_settings({"models": [{"name": "m", "provider": "mock"}] * 2})
    with pytest.raises(ConfigError, match="same key"):
        parse_settings({"server": {"admin_keys": ["k1"]},
                        "teams": [{"name": "a", "keys": [f"sha256:{key_digest('k1')}"]}]})


def test_defaults_serve_mock() -> None:
    s = default_settings()
    assert [m.provider for m in s.models] == ["mock", "mock"]
    assert s.stores.logs.startswith("sqlite:///")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "server": {"admin_keys": ["sk-very-secret-admin"]},
        "stores": {"logs": "postgresql://u:hunter2@db:5432/x"},
        "models": [{"name": "m", "provider": "openai", "api_key": "sk-upstream-secret-1234"}],
        "teams": [{"name": "t", "keys": ["sk-team-secret-key"]}],
    }))
    r = _cli("check-config", str(cfg))
    assert r.returncode == 0, r.stderr
    for secret in ("sk-very-secret-admin", "hunter2", "sk-upstream-secret-1234",
                   "sk-team-secret-key"):
        assert secret not in r.stdout
    assert "***1234" in r.stdout and "u:***@db" in r.stdout


def test_check_config_fails_with_path(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("teams:\n  - name: a\n    budget: {usd: lots}\n")
    r = _cli("check-config", str(cfg))
    assert r.returncode == 1
    assert "teams[0].budget.usd" in r.stderr
    r = _cli("check-config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_check_config_validates_policies(tmp_path: Path) -> None:
    pdir = tmp_path / "policies"
    pdir.mkdir()
    (pdir / "p.yaml").write_text("input:\n  - check: pii\n    action: mask\n"
                                 "    entities: [NOT_AN_ENTITY]\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"policies_dir": str(pdir),
                                   "teams": [{"name": "t", "policy": "p"}]}))
    r = _cli("check-config", str(cfg))
    assert r.returncode == 1 and "p.yaml: input[0].entities" in r.stderr
    cfg.write_text(yaml.safe_dump({"policies_dir": str(pdir),
                                   "teams": [{"name": "t", "policy": "missing"}]}))
    r = _cli("check-config", str(cfg))
    assert r.returncode == 1 and "teams[0].policy: no policy file" in r.stderr
    r = _cli("check-config", str(ROOT / "config.example.yaml"))
    assert r.returncode == 0


@pytest.mark.parametrize("name", ["default", "strict", "shadow"])
def test_shipped_policies_load(name: str) -> None:
    from gateway.guardrails.policy import load_policy

    policy = load_policy(ROOT / "policies" / f"{name}.yaml")
    assert policy.input_rules and policy.output_rules
    assert policy.shadow is (name == "shadow")
