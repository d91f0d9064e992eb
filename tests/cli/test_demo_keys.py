"""The built-in demo keys are public: never accepted on a non-loopback bind (issue 13, item 3).

Real ``gateway serve`` processes: with no config (or a config still holding a demo key) on
``0.0.0.0`` the program refuses to start and says how to set keys; with keys of its own set
through the README's environment variables, the demo serves there and the demo key is refused.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.cli.preflight import demo_keys_exposed, is_loopback
from gateway.settings import DEMO_ADMIN_KEY, DEMO_KEY, default_settings, parse_settings
from tests.gateway_runner import free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "GATEWAY_"))}
    return {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **extra}


def _refused(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``gateway serve`` and expect it to exit at once with status 1; its output."""
    proc = subprocess.run([sys.executable, "-m", "gateway", "serve", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Uvicorn running" not in proc.stderr
    return proc.stderr


def test_demo_defaults_refuse_a_public_bind(tmp_path: Path) -> None:
    port = free_port()
    message = _refused(["--host", "0.0.0.0", "--port", str(port)], tmp_path, _env())
    for needed in ("0.0.0.0", "GATEWAY_DEMO_KEY", "GATEWAY_ADMIN_KEY", "127.0.0.1",
                   "server.admin_keys", "teams[0].keys"):
        assert needed in message, message
    assert DEMO_ADMIN_KEY not in message.replace("GATEWAY_ADMIN_KEY", "")
    # One key of its own is not enough: the other demo key is still the public one.
    message = _refused(["--host", "0.0.0.0", "--port", str(port)], tmp_path,
                       _env(GATEWAY_ADMIN_KEY="sk-own-admin-0123456789"))
    assert "teams[0].keys[0]" in message and "server.admin_keys" not in message


def test_a_config_with_a_demo_key_refuses_a_public_bind(tmp_path: Path) -> None:
    digest = hashlib.sha256(DEMO_KEY.encode()).hexdigest()
    cfg = {"server": {"host": "0.0.0.0", "port": free_port(), "admin_keys": ["sk-own-admin"]},
           "stores": {"logs": f"sqlite:///{tmp_path}/gw.db"},
           "models": [{"name": "mock", "provider": "mock"}],
           "teams": [{"name": "t", "keys": ["sk-own-client", f"sha256:{digest}"]}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    message = _refused(["--config", str(path)], tmp_path, _env())
    assert "teams[0].keys[1]" in message and "0.0.0.0" in message


def test_own_keys_serve_the_demo_on_a_public_bind(tmp_path: Path) -> None:
    port = free_port()
    env = _env(GATEWAY_DEMO_KEY="sk-own-demo-0123456789", GATEWAY_ADMIN_KEY="sk-own-admin-0123")
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--host", "0.0.0.0",
                             "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        for key, status in ((DEMO_KEY, 401), ("sk-own-demo-0123456789", 200)):
            r = httpx.post(url + "/v1/chat/completions", json=body, timeout=10,
                           headers={"authorization": f"Bearer {key}"})
            assert r.status_code == status
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert "sk-own-demo-0123456789" in out  # the banner shows the key that works


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.5", False),
    ("gateway.example.com", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    problem = demo_keys_exposed(default_settings(), host)
    assert (problem is None) is loopback


def test_a_config_without_demo_keys_may_bind_anywhere() -> None:
    own = parse_settings({"server": {"admin_keys": ["sk-admin-own"]},
                          "models": [{"name": "mock", "provider": "mock"}],
                          "teams": [{"name": "t", "keys": [{"key": "sk-own", "name": "k"}],
                                     "reviewer_keys": ["sk-rev"]}]})
    assert demo_keys_exposed(own, "0.0.0.0") is None
