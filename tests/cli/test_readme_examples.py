"""The README's review-queue commands run against the demo as printed (issue 13, item 8): they
named a team (``search``) that the demo defaults do not have."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.settings import default_settings
from tests.gateway_runner import run_gateway

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[list[str]]:
    """``gateway flags ...`` lines of the README's shell blocks that need no item id."""
    text = (ROOT / "README.md").read_text()
    lines = [line.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
             for line in block.splitlines()]
    return [shlex.split(line.split("#")[0])[1:] for line in lines
            if line.startswith("gateway flags ") and "flg_" not in line]


def test_the_readme_flags_examples_run_against_the_demo(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = readme_commands()
    assert len(commands) >= 3
    teams = {t.name for t in default_settings().teams}
    for argv in commands:
        if "--team" in argv:
            assert argv[argv.index("--team") + 1] in teams, argv
    monkeypatch.chdir(tmp_path)  # the demo's SQLite file and export files land here
    key = default_settings().server.admin_keys[0]  # GATEWAY_ADMIN_KEY, else the demo one
    assert key
    with run_gateway(default_settings()) as gw:
        for argv in commands:
            assert main([*argv, "--url", gw.url, "--key", key]) == 0, argv
