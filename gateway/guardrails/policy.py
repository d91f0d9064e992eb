"""Policies: YAML files in ``policies_dir`` turned into rules (a built check plus an action).

A policy names, per direction, which checks run and what happens when one fires. Loading fails
fast with the file and YAML path of the problem (``policies/default.yaml: input[1].entities:
...``); a team naming a policy that does not exist stops the program at start-up. Checks are
built once here and shared by every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.checks.base import Check
from gateway.checks.registry import CheckConfigError, build_check
from gateway.settings import ConfigError, Settings

Action = Literal["block", "redact", "mask", "flag"]
Direction = Literal["input", "output"]
_RESERVED = ("check", "action", "name")


class _StreamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Characters held back from the client so a match split across chunks is seen whole.
    holdback_chars: int = Field(default=128, ge=0, le=8192)
    #: Released text is scanned in steps of at least this many new characters (fewer scans).
    step_chars: int = Field(default=32, ge=1, le=4096)


class _PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["enforce", "shadow"] = "enforce"
    input: list[dict[str, Any]] = Field(default_factory=list)
    output: list[dict[str, Any]] = Field(default_factory=list)
    stream: _StreamSpec = Field(default_factory=_StreamSpec)
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    check_name: str
    action: Action
    check: Check
    direction: Direction


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    shadow: bool
    input_rules: tuple[Rule, ...]
    output_rules: tuple[Rule, ...]
    holdback_chars: int
    step_chars: int

    @property
    def masks(self) -> bool:
        """Whether answers may hold placeholders to restore (enforced input masking)."""
        return not self.shadow and any(r.action == "mask" for r in self.input_rules)

    @property
    def redacts_output(self) -> bool:
        """Whether answers are rewritten by output rules (enforced): then what no rule can
        check (logprobs, audio) is removed from them."""
        return bool(self.output_rules) and not self.shadow

    @property
    def guards_output(self) -> bool:
        """Whether a stream must go through the guard (output rules, or placeholders)."""
        return bool(self.output_rules) or self.masks


def _rule(path: str, i: int, raw: Any, direction: Direction) -> Rule:
    where = f"{path}: {direction}[{i}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a rule must be a mapping")
    check_name, action = raw.get("check"), raw.get("action")
    if not isinstance(check_name, str):
        raise ConfigError(f"{where}.check: required, the name of a check")
    if action not in ("block", "redact", "mask", "flag"):
        raise ConfigError(f"{where}.action: must be one of block, redact, mask, flag")
    if action == "mask" and direction == "output":
        raise ConfigError(f"{where}.action: mask is for input rules only (use redact)")
    name = raw.get("name", check_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: must be a non-empty string")
    params = {k: v for k, v in raw.items() if k not in _RESERVED}
    try:
        check = build_check(check_name, params, rule_name=name)
    except CheckConfigError as exc:
        suffix = f".{exc.param}" if exc.param else ".check"
        raise ConfigError(f"{where}{suffix}: {exc.message}") from None
    if direction not in type(check).directions:
        raise ConfigError(f"{where}.check: '{check_name}' does not run on {direction}")
    return Rule(name, check_name, action, check, direction)


def load_policy(path: Path) -> Policy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read policy {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        spec = _PolicySpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {loc}: {err['msg']}") from None
    rules_in = tuple(_rule(str(path), i, r, "input") for i, r in enumerate(spec.input))
    rules_out = tuple(_rule(str(path), i, r, "output") for i, r in enumerate(spec.output))
    names = [r.name for r in (*rules_in, *rules_out)]
    if len({(r.direction, r.name) for r in (*rules_in, *rules_out)}) != len(names):
        raise ConfigError(f"{path}: two rules of one direction share a name; set 'name'")
    return Policy(path.stem, spec.mode == "shadow", rules_in, rules_out,
                  spec.stream.holdback_chars, spec.stream.step_chars)


def load_policies(settings: Settings) -> dict[str, Policy]:
    """Every policy a team uses, by name; a missing or broken file is a ConfigError."""
    base = Path(settings.policies_dir)
    out: dict[str, Policy] = {}
    for i, team in enumerate(settings.teams):
        if team.policy is None or team.policy in out:
            continue
        path = base / f"{team.policy}.yaml"
        if not path.is_file():
            raise ConfigError(f"teams[{i}].policy: no policy file {path}")
        out[team.policy] = load_policy(path)
    return out
