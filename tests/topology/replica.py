"""One gateway replica as a real process (``python -m gateway serve``) on a fixed loopback port.

The port stays the same across restarts, as a pod's address behind a Service or a container's
behind HAProxy does, so the load balancer's view of the replica is the same server going down
and coming back. Each start appends to the replica's log file under a marker line.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def listening_port() -> int:
    """A free loopback port below Linux's ephemeral range (32768-60999), so that the outgoing
    connections of other processes cannot take it between a replica's restarts."""
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Replica:
    def __init__(self, name: str, port: int, config: Path, workdir: Path) -> None:
        self.name = name
        self.port = port
        self.config = config
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.generation = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self.generation += 1
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        with self.log.open("ab") as out:
            out.write(f"--- {self.name} start #{self.generation} ---\n".encode())
            out.flush()
            # Its own session, so that a SIGKILL of the group takes any worker processes too.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config", str(self.config),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, timeout_s: float = 60) -> float:
        """Seconds until ``/readyz`` answers 200 (its stores answer): what HAProxy checks."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - start
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s:\n{self.tail()}")

    def sigkill(self) -> None:
        """A crash: the whole process group dies at once, nothing is flushed."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP the group: nothing more leaves the process (as in a long stall) until
        ``thaw`` or ``sigkill``."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def drain(self, timeout_s: float = 60) -> int | None:
        """SIGTERM, as an orchestrator stops a replica, and wait for the graceful exit; the exit
        status (uvicorn re-raises the signal, so -15 is a clean drain)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.sigkill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout_s}s of SIGTERM") from None

    def restart(self, timeout_s: float = 60) -> float:
        """Start again on the same port; seconds until ready."""
        self.start()
        return self.wait_ready(timeout_s)

    def stop(self) -> None:
        """Clean-up, whatever state the test left the replica in: SIGTERM, then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.sigkill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
