"""The entry-point registry: every built-in loads through it, and bad rules name their fault."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest
from pydantic import BaseModel

from gateway.checks.base import ScanContext
from gateway.checks.registry import CheckConfigError, available_checks, build_check, load_checks

BUILT_INS = {
    "pii",
    "secrets",
    "regex",
    "wordlist",
    "prompt_injection",
    "invisible_text",
    "max_input_tokens",
    "json",
    "refusal",
}


def test_every_built_in_is_an_entry_point() -> None:
    group = {ep.name for ep in importlib.metadata.entry_points(group="gateway.checks")}
    assert group >= BUILT_INS
    assert set(load_checks()) >= BUILT_INS


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_names_line_up_and_interface_is_complete(name: str) -> None:
    cls = load_checks()[name]
    module = inspect.getmodule(cls)
    # a module named after the check, or a package of that name with the check in check.py
    assert module is not None
    assert module.__name__ in (f"gateway.checks.{name}", f"gateway.checks.{name}.check")
    assert cls.__name__ == "".join(p.title() for p in name.split("_")) + "Check"
    assert cls.name == name
    assert issubclass(cls.Params, BaseModel)
    config = cls.Params.model_config
    assert config.get("extra") == "forbid" and config.get("frozen") is True
    assert cls.directions and cls.directions <= {"input", "output"}
    assert isinstance(cls.whole_text, bool) and cls.max_match_chars >= 0
    assert cls.__doc__ and module.__doc__


def test_registry_copy_is_independent() -> None:
    copy = available_checks()
    copy.clear()
    assert load_checks()


def test_unknown_check_lists_the_installed_ones() -> None:
    with pytest.raises(CheckConfigError) as err:
        build_check("pi", {})
    assert err.value.param == "" and "pii" in str(err.value)


@pytest.mark.parametrize(
    ("name", "params", "param"),
    [
        ("pii", {"entities": ["EMAIL_ADDRESS"], "min_score": "high"}, "min_score"),
        ("secrets", {"min_entropy": -1}, "min_entropy"),
        ("secrets", {"action": "block"}, "action"),  # rule keys must be stripped by the loader
        ("prompt_injection", {"threshold": 1.5}, "threshold"),
        ("regex", {"patterns": ["ok", "(bad"]}, "patterns"),
        ("json", {"validate_schema": "maybe"}, "validate_schema"),
        ("refusal", {"head_chars": 0}, "head_chars"),
        ("invisible_text", {"chars": "x"}, "chars"),
    ],
)
def test_bad_parameter_names_itself(name: str, params: dict[str, object], param: str) -> None:
    with pytest.raises(CheckConfigError) as err:
        build_check(name, params)
    assert err.value.check == name
    assert err.value.param == param
    assert f"{name}.{param}" in str(err.value)


def test_built_check_scans() -> None:
    check = build_check("regex", {"patterns": ["x+"], "label": "XS"})
    assert [f.label for f in check.scan("axxb", ScanContext("input"))] == ["XS"]
