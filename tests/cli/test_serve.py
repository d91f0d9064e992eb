"""The gateway as users run it: a real process, embedded defaults, PostgreSQL logs, readiness."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from gateway.settings import DEMO_ADMIN_KEY, DEMO_KEY
from tests.fakes.openai_upstream import running_fake_openai
from tests.gateway_runner import GatewayProcess, free_port, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config


def _wait(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the gateway exited"
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the gateway did not become healthy")


def test_serve_without_config_answers_the_sdk_offline(tmp_path: Path) -> None:
    """What `make run` does: defaults, mock model, SQLite under ./data, demo key printed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "GATEWAY_"))}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc)
        c = openai.OpenAI(base_url=url + "/v1", api_key=DEMO_KEY, max_retries=0)
        reply = c.chat.completions.create(model="mock",
                                          messages=[{"role": "user", "content": "hello"}])
        assert reply.choices[0].message.content == "Echo: hello"
        r = httpx.get(url + "/admin/teams/demo/budget",
                      headers={"authorization": f"Bearer {DEMO_ADMIN_KEY}"})
        assert r.json()["spent_usd"] > 0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15.
    assert proc.returncode in (0, -15)
    text = out.decode()
    assert f"http://127.0.0.1:{port}/v1" in text and DEMO_KEY in text
    assert (tmp_path / "data" / "gateway.db").exists()


def test_postgres_log_store_end_to_end(postgres_url: str, tmp_path: Path) -> None:
    with running_fake_openai() as fake:
        cfg = base_config(fake.url, tmp_path)
        cfg["stores"]["logs"] = postgres_url
        with run_gateway(cfg) as gw:
            c = openai.OpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0)
            c.chat.completions.create(model="gpt-test",
                                      messages=[{"role": "user", "content": "hi"}])
            list(c.chat.completions.create(model="gpt-test", stream=True,
                                           messages=[{"role": "user", "content": "hi"}]))
            gw.flush()
            h = {"authorization": f"Bearer {ADMIN_KEY}"}
            items = httpx.get(gw.url + "/admin/requests", headers=h).json()["items"]
            assert [i["stream"] for i in items] == [True, False]
            spend = httpx.get(gw.url + "/admin/spend?group_by=key", headers=h).json()
            assert spend["rows"][0]["requests"] == 2
            assert spend["total_cost_usd"] == pytest.approx(2 * 29e-6)
            assert httpx.get(gw.url + "/readyz").status_code == 200


def test_readyz_reports_a_dead_log_store(tmp_path: Path) -> None:
    """A log store that stops answering makes /readyz 503 with a reason; serving goes on."""
    port = free_port()
    with running_fake_openai() as fake:
        cfg = base_config(fake.url, tmp_path)
        cfg["stores"]["logs"] = f"postgresql://postgres@127.0.0.1:{port}/nothing"
        proc = GatewayProcess(cfg, tmp_path)
        try:
            # Opening the store fails at start-up: the process must say so and exit non-zero.
            deadline = time.monotonic() + 30
            while proc.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.proc.returncode not in (None, 0)
        finally:
            proc.kill()
