"""Meta-test: every check registered in the ``gateway.checks`` entry-point group has its own test
module here, ``tests/checks/test_<name>.py`` (as datasette fails a build when a hook has no test).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from gateway.checks.registry import GROUP

HERE = Path(__file__).parent


def test_every_registered_check_has_a_test_module() -> None:
    names = sorted(ep.name for ep in entry_points(group=GROUP))
    assert names, "no check is registered: is the project installed?"
    missing = [n for n in names if not (HERE / f"test_{n}.py").is_file()]
    assert missing == [], f"registered checks without tests/checks/test_<name>.py: {missing}"


def test_every_check_test_module_names_a_registered_check() -> None:
    """The other way round: a test module named after a check that no longer exists is stale."""
    names = {ep.name for ep in entry_points(group=GROUP)}
    helpers = {"registry", "prefilters", "every_check_has_tests"}
    stale = [
        p.name
        for p in HERE.glob("test_*.py")
        if p.stem.removeprefix("test_") not in names | helpers
    ]
    assert stale == []
