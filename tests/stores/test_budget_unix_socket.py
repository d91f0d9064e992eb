"""The README's ``unix:///path.sock?db=N`` budget store, end to end (issue 13, item 8).

A ``redis-server`` listening only on a unix socket (no TCP port): ``gateway check-config``
accepts the URL, a gateway charges requests to it, and a second gateway on the same socket
sees the spend, so it lives in that Redis database and nowhere else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config
from tests.services import _unavailable


@pytest.fixture
def socket_path(pytestconfig: pytest.Config) -> Iterator[Path]:
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable(pytestconfig, "no redis-server on PATH for the unix-socket test")
    root = Path(tempfile.mkdtemp(prefix="gw-redis-"))  # short: socket paths are limited
    sock = root / "redis.sock"
    proc = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock),
                             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                             "--dir", str(root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def test_unix_socket_budget_store(socket_path: Path, fake: FakeOpenAI, tmp_path: Path) -> None:
    url = f"unix://{socket_path}?db=7"
    cfg = base_config(fake.url, tmp_path)
    cfg["stores"]["budgets"] = url
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    check = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(path)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr
    assert f"budgets: {url}" in check.stdout

    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with run_gateway(cfg) as gw:
        assert httpx.get(gw.url + "/readyz").status_code == 200
        for _ in range(3):
            r = httpx.post(gw.v1 + "/chat/completions", timeout=10,
                           headers={"authorization": f"Bearer {CLIENT_KEY}"},
                           json={"model": "gpt-test", "messages": [{"role": "user",
                                                                    "content": "hi"}]})
            assert r.status_code == 200, r.text
        gw.flush()
        spent = httpx.get(gw.url + "/admin/teams/search/budget", headers=admin).json()
    assert spent["spent_usd"] == pytest.approx(3 * 29e-6)
    with run_gateway(cfg) as again:  # a new process's view: the spend is in Redis
        seen = httpx.get(again.url + "/admin/teams/search/budget", headers=admin).json()
    assert seen["spent_usd"] == spent["spent_usd"]
    client = redis.Redis(unix_socket_path=str(socket_path), db=7)
    try:
        assert client.dbsize() > 0
    finally:
        client.close()
