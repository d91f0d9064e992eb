"""Run a real gateway for tests: the ASGI app under uvicorn in a thread, or a separate process.

The in-thread server speaks real HTTP on a loopback port, so the official ``openai`` SDK (sync
and async) talks to it exactly as an app would. ``GatewayProcess`` starts ``python -m gateway
serve`` for tests that need several replicas or a ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from gateway.app import create_app
from gateway.settings import Settings, parse_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RunningGateway:
    def __init__(self, url: str, app: Any) -> None:
        self.url = url  # http://127.0.0.1:port
        self.app = app

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    @property
    def services(self) -> Any:
        return self.app.state.services

    def flush(self) -> None:
        """Wait until no request is in progress (a stream settles and records itself just
        after its last byte), then until every record is in the store."""
        loop = self.app.state.loop
        fut = asyncio.run_coroutine_threadsafe(self.services.ops.drain(10), loop)
        fut.result(15)
        fut = asyncio.run_coroutine_threadsafe(self.services.writer.flush(), loop)
        fut.result(10)

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop (e.g. a store query) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.app.state.loop).result(10)


@contextlib.contextmanager
def run_gateway(settings: Settings | dict[str, Any], *, port: int | None = None
                ) -> Iterator[RunningGateway]:
    """``port``: when the config must name the gateway's own URL (an OIDC redirect URL)."""
    if isinstance(settings, dict):
        settings = parse_settings(settings)
    app = create_app(settings)
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="asyncio", lifespan="on",
                            log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    started = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app.state.loop = loop
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=run, daemon=True, name="gateway")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    started.set()
    try:
        yield RunningGateway(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(20)


class GatewayProcess:
    """``python -m gateway serve`` in a child process, with its config written to a file."""

    def __init__(self, settings: dict[str, Any], workdir: Path, *, workers: int = 1) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"gateway-{self.port}.yaml"
        self.config.write_text(yaml.safe_dump(settings))
        self.log = workdir / f"gateway-{self.port}.log"
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config),
             "--port", str(self.port), "--workers", str(workers)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway not ready: {self.log.read_text()[-2000:]}")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)

    def __enter__(self) -> GatewayProcess:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
