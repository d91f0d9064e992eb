"""What ``pip install .`` ships (issue 13, item 8): every ``package-data`` pattern names files
that exist, so none is a leftover of a folder that was moved or never made."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_data_pattern_matches_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = config["tool"]["setuptools"]["package-data"]
    assert package_data
    for package, patterns in package_data.items():
        base = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert [p for p in base.glob(pattern) if p.is_file()], f"{package}: {pattern}"
