"""``gateway <command> | head`` (issue 13, item 8): when the reader goes away, every command
stops quietly, with no BrokenPipeError traceback, as other command-line tools do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, base_config

ROOT = Path(__file__).resolve().parents[2]


def closed_reader(*args: str) -> tuple[int, str]:
    """Run ``gateway ARGS`` with a stdout whose reader is gone before it writes."""
    proc = subprocess.Popen([sys.executable, "-m", "gateway", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.wait(30), err


def test_commands_piped_into_a_closed_reader(fake: FakeOpenAI, tmp_path: Path) -> None:
    runs = {"check-config": closed_reader("check-config", "config.example.yaml")}
    with run_gateway(base_config(fake.url, tmp_path)) as gw:
        for command in ("spend", "flags list"):
            runs[command] = closed_reader(*command.split(), "--url", gw.url, "--key", ADMIN_KEY)
    for command, (status, err) in runs.items():
        assert "Traceback" not in err and "BrokenPipeError" not in err, (command, err)
        assert status == 141, command  # like a shell tool killed by SIGPIPE (128 + 13)
    # argparse's own help swallows the error; it must not turn into a traceback either.
    status, err = closed_reader("--help")
    assert status in (0, 141) and "Traceback" not in err, err
