"""``gateway flags ...`` against a real gateway over HTTP: tables, review, export, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.cli.flags import table
from gateway.stores.sql.flags import flag_id
from tests.flagdata import BASE, flagged, rule, submit
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, REVIEWER_KEY, base_config


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RunningGateway]:
    with run_gateway(base_config("http://127.0.0.1:9/v1", tmp_path)) as g:
        submit(g, flagged("s1", BASE + 1),
               flagged("s2", BASE + 2, rules=[rule("internal-hosts", "regex")]),
               flagged("o1", BASE + 3, team="other"))
        yield g


def run(gw: RunningGateway, capsys: pytest.CaptureFixture[str], *argv: str,
        key: str = ADMIN_KEY) -> tuple[int, str, str]:
    code = main(["flags", *argv[:1], "--url", gw.url, "--key", key, *argv[1:]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_prints_a_table(gw: RunningGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(gw, capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "(UTC)", "TEAM", "MODEL", "STATUS", "RULES",
                                "FINDINGS"]
    assert lines[2].startswith(flag_id("o1")) and "2023-11-14 00:00:03" in lines[2]
    assert "open 3, confirmed 0, dismissed 0" in out
    code, out, _ = run(gw, capsys, "list", "--check", "regex", "--limit", "1")
    assert "internal-hosts" in out and "s1" not in out and "more: --cursor" not in out
    code, out, _ = run(gw, capsys, "list", "--limit", "1")
    cursor = out.rsplit("--cursor ", 1)[1].strip()
    code, out, _ = run(gw, capsys, "list", "--limit", "1", "--cursor", cursor)
    assert flag_id("s2") in out


def test_reviewer_sees_own_team_and_gets_404_elsewhere(
        gw: RunningGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(gw, capsys, "list", "--json", key=REVIEWER_KEY)
    assert [i["request_id"] for i in orjson.loads(out)["items"]] == ["s2", "s1"]
    code, _, err = run(gw, capsys, "review", flag_id("o1"), "dismiss", key=REVIEWER_KEY)
    assert code == 1 and err.startswith("gateway flags: 404: No flagged item")
    assert REVIEWER_KEY not in err


def test_review_then_show_history(gw: RunningGateway, capsys: pytest.CaptureFixture[str]) -> None:
    fid = flag_id("s1")
    code, out, _ = run(gw, capsys, "review", fid, "confirm", "--note", "real customer mail")
    assert code == 0 and out.strip() == f"{fid}: confirmed (1 verdicts so far)"
    code, out, _ = run(gw, capsys, "show", fid)
    assert "status:  confirmed" in out
    assert "emails  pii    flag    EMAIL_ADDRESS  0.93   8-23" in out
    assert "prompt (redacted):\nmail to <EMAIL_ADDRESS> please" in out
    assert "confirmed by cfg:" in out and ": real customer mail" in out
    code, out, _ = run(gw, capsys, "stats")
    assert "100%" in out and "internal-hosts" in out


def test_export_to_file(gw: RunningGateway, capsys: pytest.CaptureFixture[str],
                        tmp_path: Path) -> None:
    target = tmp_path / "flags.csv"
    code, _, err = run(gw, capsys, "export", "--format", "csv", "--team", "search",
                       "-o", str(target))
    assert code == 0 and "wrote" in err
    lines = target.read_text().splitlines()
    assert lines[0].startswith("id,request_id,created_at") and len(lines) == 3
    code, out, _ = run(gw, capsys, "export", "--status", "open")
    assert len(out.splitlines()) == 3


def test_errors_are_one_line(gw: RunningGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(gw, capsys, "show", "flg_nope")
    assert (code, err) == (1, "gateway flags: 404: No flagged item 'flg_nope'.\n")
    code, _, err = run(gw, capsys, "list", key="sk-wrong")
    assert code == 1 and "401" in err
    code = main(["flags", "list", "--url", "http://127.0.0.1:9", "--key", "k"])
    assert code == 1 and "cannot reach" in capsys.readouterr().err


def test_entry_point_reads_the_environment(gw: RunningGateway) -> None:
    env = {**os.environ, "GATEWAY_URL": gw.url, "GATEWAY_ADMIN_KEY": ADMIN_KEY}
    proc = subprocess.run([sys.executable, "-m", "gateway", "flags", "list", "--status", "open"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert flag_id("s1") in proc.stdout
    env.pop("GATEWAY_ADMIN_KEY")
    proc = subprocess.run([sys.executable, "-m", "gateway", "flags", "list"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "GATEWAY_ADMIN_KEY" in proc.stderr


def test_table_cuts_the_widest_column() -> None:
    text = table(["A", "B"], [["x" * 50, "short"]], max_width=30)
    assert all(len(line) <= 30 for line in text.splitlines())
    assert "…" in text
