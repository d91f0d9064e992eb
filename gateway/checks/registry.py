"""Finds checks by name through the ``gateway.checks`` entry-point group and builds them.

Built-in checks are registered in pyproject.toml through the same group as third-party packages,
so there is one way in and no if-chain: ``pii = "gateway.checks.pii:PiiCheck"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from gateway.checks.base import Check, ParamError

GROUP = "gateway.checks"


class CheckConfigError(ValueError):
    """A rule names an unknown check or gives it a bad parameter.

    ``param`` is the dotted path of the offending parameter inside the rule (``""`` when the check
    itself is unknown), so the policy loader can report ``input[2].entities[0]``.
    """

    def __init__(self, check: str, param: str, message: str) -> None:
        self.check = check
        self.param = param
        self.message = message
        where = f"{check}.{param}" if param else check
        super().__init__(f"check {where}: {message}")


@lru_cache(maxsize=1)
def load_checks() -> dict[str, type[Check]]:
    """Every installed check class by registry name.

    Cached once per process (installed distributions do not change while it runs); callers get a
    copy, so the cache itself is never mutated.
    """
    found: dict[str, type[Check]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if getattr(cls, "name", None) != ep.name:
            raise CheckConfigError(ep.name, "", f"{ep.value} declares name {cls.name!r}")
        found[ep.name] = cls
    return found


def available_checks() -> dict[str, type[Check]]:
    """A copy of the registry, safe for the caller to modify."""
    return dict(load_checks())


def _label_from_rule_name(rule_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", rule_name).strip("_").upper() or "MATCH"


def build_check(name: str, params: Mapping[str, Any], *, rule_name: str | None = None) -> Check:
    """Build check ``name`` from a rule's own parameters (without ``check``/``action``/``name``).

    A check whose ``Params`` has a ``label`` field gets the rule name as its default label
    (``internal-hosts`` -> ``INTERNAL_HOSTS``). Raises ``CheckConfigError`` naming the parameter.
    """
    checks = load_checks()
    cls = checks.get(name)
    if cls is None:
        known = ", ".join(sorted(checks))
        raise CheckConfigError(name, "", f"unknown check (installed: {known})")
    values = dict(params)
    if rule_name and "label" in cls.Params.model_fields and "label" not in values:
        values["label"] = _label_from_rule_name(rule_name)
    try:
        model = cls.Params.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise CheckConfigError(name, loc, err["msg"]) from exc
    try:
        return cls(model)
    except ParamError as exc:
        raise CheckConfigError(name, exc.param, str(exc)) from exc
    except CheckConfigError:
        raise
    except ValueError as exc:  # a value pydantic accepted but the check cannot use
        raise CheckConfigError(name, "", str(exc)) from exc
