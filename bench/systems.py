"""Start, health-check and stop the processes a benchmark measures, all on 127.0.0.1.

Each system is one process tree started in its own session, so stopping it (SIGTERM to its
process group, SIGKILL after a grace period) ends its workers too and nothing else. A system that
cannot start (a peer not installed, a gateway feature not written yet) raises ``Unavailable``
with a one-line reason that the report prints instead of figures.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
LITELLM_VENV = BENCH / ".venv-litellm"
PORTKEY_DIR = BENCH / ".venv-portkey"
PORTKEY_ENTRY = PORTKEY_DIR / "node_modules/@portkey-ai/gateway/build/start-server.js"
BENCH_KEY = "sk-bench"
REDIS_DB = 15  # dedicated db: the benchmark flushes only this one


class Unavailable(Exception):
    """This system cannot be measured in this run; the message says why."""


@dataclass
class System:
    """A running system under test: where to send requests and which process tree to watch."""

    name: str
    base_url: str  # ends in /v1
    headers: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    workers: int = 1
    log: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path, lines: int = 6) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None,
          unset: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, output to ``log`` (never a pipe: pipes fill and stall)."""
    full_env = {k: v for k, v in os.environ.items() if k not in unset} | (env or {})
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=full_env, start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 2xx; raise Unavailable if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"exited with {proc.returncode}: {_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if 200 <= r.status < 300:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    stop_proc(proc)
    raise Unavailable(f"not healthy after {timeout:.0f}s: {_log_tail(log)}")


def stop_proc(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM the process group we created, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start_upstream(workdir: Path, latency_ms: float, chunks: int, chunk_delay_ms: float) -> System:
    port, log = free_port(), workdir / "upstream.log"
    proc = spawn([PYTHON, str(BENCH / "fake_upstream.py"), "--port", str(port),
                  "--latency-ms", str(latency_ms), "--chunks", str(chunks),
                  "--chunk-delay-ms", str(chunk_delay_ms)], log)
    wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log, 15)
    return System("upstream", f"http://127.0.0.1:{port}/v1", {"Authorization": "Bearer x"},
                  proc, log=log)


def start_bare(workdir: Path, upstream: System) -> System:
    port, log = free_port(), workdir / "bare.log"
    proc = spawn([PYTHON, str(BENCH / "bare_passthrough.py"), "--port", str(port),
                  "--upstream", upstream.base_url], log)
    wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log, 30)
    return System("bare", f"http://127.0.0.1:{port}/v1", {"Authorization": "Bearer x"},
                  proc, log=log)


def gateway_config(workdir: Path, name: str, upstream: System, budgets: str,
                   policy: bool) -> Path:
    """The gateway YAML for one variant; every variant has its own SQLite log file."""
    models = [
        {"name": "bench-model", "provider": "openai", "model": "bench-model",
         "api_base": upstream.base_url, "api_key": "x",
         "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
        {"name": "bench-embed", "provider": "openai", "model": "bench-embed",
         "api_base": upstream.base_url, "api_key": "x",
         "price": {"input_per_mtok": 0.02, "output_per_mtok": 0}},
    ]
    team: dict[str, object] = {"name": "bench", "keys": [BENCH_KEY],
                               "budget": {"usd": 1_000_000, "period": "month"}}
    if policy:
        team["policy"] = "default"
    cfg = {
        "server": {"host": "127.0.0.1", "port": 4000, "admin_keys": ["sk-admin"]},
        "stores": {"budgets": budgets, "logs": f"sqlite:///{workdir / name}.db"},
        "policies_dir": str(ROOT / "policies"),
        "models": models,
        "teams": [team],
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def gateway_command() -> list[str]:
    exe = Path(PYTHON).parent / "gateway"
    return [str(exe)] if exe.exists() else [PYTHON, "-m", "gateway"]


def start_gateway(workdir: Path, upstream: System, variant: str) -> System:
    """Variants: ``gateway``, ``gw-redis``, ``gw-policy``, ``gw-redis-policy``, ``gw-w2``."""
    policy = "policy" in variant
    if policy and not (ROOT / "policies" / "default.yaml").exists():
        raise Unavailable("policies/default.yaml does not exist yet (policy scenarios skipped)")
    budgets = f"redis://127.0.0.1:6379/{REDIS_DB}" if "redis" in variant else "memory://"
    workers = 2 if variant.endswith("-w2") else 1
    cfg = gateway_config(workdir, variant, upstream, budgets, policy)
    port, log = free_port(), workdir / f"{variant}.log"
    proc = spawn([*gateway_command(), "serve", "--config", str(cfg), "--host", "127.0.0.1",
                  "--port", str(port), "--workers", str(workers)], log,
                 {"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log, 60)
    except Unavailable as e:
        if policy and "polic" in str(e).lower():
            raise Unavailable(f"gateway rejected `policy: default` (policy scenarios "
                              f"skipped): {e}") from None
        raise
    return System(variant, f"http://127.0.0.1:{port}/v1",
                  {"Authorization": f"Bearer {BENCH_KEY}"}, proc, workers, log)


def start_litellm(workdir: Path, upstream: System) -> System:
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        raise Unavailable("not installed (run: python bench/run.py --install-peers)")
    params = {"api_base": upstream.base_url, "api_key": "x"}
    cfg = {
        "model_list": [
            {"model_name": "bench-model",
             "litellm_params": {"model": "openai/bench-model", **params}},
            {"model_name": "bench-embed",
             "litellm_params": {"model": "openai/bench-embed", **params}},
        ],
        "general_settings": {"master_key": BENCH_KEY},
        "litellm_settings": {"telemetry": False, "drop_params": True},
    }
    path = workdir / "litellm.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    port, log = free_port(), workdir / "litellm.log"
    proc = spawn([str(exe), "--config", str(path), "--host", "127.0.0.1", "--port", str(port),
                  "--num_workers", "1", "--telemetry", "False"], log,
                 {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                  "DISABLE_SCHEMA_UPDATE": "True"},
                 unset=("DATABASE_URL", "REDIS_URL", "REDIS_HOST"))  # no database: see docstring
    wait_healthy(f"http://127.0.0.1:{port}/health/liveliness", proc, log, 120)
    return System("litellm", f"http://127.0.0.1:{port}/v1",
                  {"Authorization": f"Bearer {BENCH_KEY}"}, proc, log=log)


def start_portkey(workdir: Path, upstream: System) -> System:
    if not PORTKEY_ENTRY.exists():
        raise Unavailable("not installed (run: python bench/run.py --install-peers)")
    port, log = free_port(), workdir / "portkey.log"
    proc = spawn(["node", str(PORTKEY_ENTRY), f"--port={port}", "--headless"], log,
                 {"NODE_ENV": "production"})
    wait_healthy(f"http://127.0.0.1:{port}/", proc, log, 60)
    headers = {"Authorization": "Bearer x", "x-portkey-provider": "openai",
               "x-portkey-custom-host": upstream.base_url}
    return System("portkey", f"http://127.0.0.1:{port}/v1", headers, proc, log=log)


def flush_redis_db() -> str:
    """Empty the benchmark's dedicated Redis db; returns a note when Redis is not there."""
    try:
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(REDIS_DB), "flushdb"],
                             capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"redis-cli failed: {e}"
    return "" if out.stdout.strip() == b"OK" else f"redis: {out.stdout!r} {out.stderr!r}"
