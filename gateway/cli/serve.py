"""``gateway serve`` (uvicorn, one or more workers) and ``gateway check-config`` (validate)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson
import yaml

from gateway.cli.preflight import config_warnings, demo_keys_exposed
from gateway.settings import (
    DEMO_ADMIN_KEY,
    DEMO_KEY,
    Settings,
    default_settings,
    load_settings,
    masked,
)


def add_serve_parsers(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="YAML configuration (default: embedded demo defaults)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    check = sub.add_parser("check-config", help="validate a configuration and print it")
    check.add_argument("path")
    check.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    check.add_argument("--strict", action="store_true", help="warnings are errors (exit 1)")


def _load(path: str | None) -> Settings:
    return load_settings(path) if path else default_settings()


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _load(args.config)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    workers = args.workers or settings.server.workers
    if not _preflight(settings, host, warn=bool(args.config)):
        return 1
    if args.config:
        os.environ["GATEWAY_CONFIG"] = os.path.abspath(args.config)
    else:
        os.environ.pop("GATEWAY_CONFIG", None)
        demo_key = os.environ.get("GATEWAY_DEMO_KEY", DEMO_KEY)
        print(f"gateway: serving the built-in 'mock' model at http://{host}:{port}/v1\n"
              f"  demo key:  {demo_key}\n"
              f"  admin key: {os.environ.get('GATEWAY_ADMIN_KEY', DEMO_ADMIN_KEY)}\n"
              f"  try: curl http://{host}:{port}/v1/chat/completions "
              f"-H 'Authorization: Bearer {demo_key}' -H 'Content-Type: application/json' "
              """-d '{"model":"mock","messages":[{"role":"user","content":"hello"}]}'""",
              flush=True)
    own_dir = _multiprocess_metrics(workers)
    try:
        _run_uvicorn(uvicorn, settings, host, port, workers)
    finally:
        if own_dir:
            import shutil

            shutil.rmtree(own_dir, ignore_errors=True)
    return 0


def _preflight(settings: Settings, host: str, *, warn: bool) -> bool:
    """Refuse to expose the public demo keys (False); print the config's warnings."""
    refusal = demo_keys_exposed(settings, host)
    if refusal:
        print(refusal, file=sys.stderr)
        return False
    for warning in config_warnings(settings) if warn else ():
        print(f"gateway: warning: {warning}", file=sys.stderr)
    return True


def _run_uvicorn(uvicorn: Any, settings: Settings, host: str, port: int, workers: int) -> None:
    uvicorn.run("gateway.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, loop="uvloop", http="httptools", access_log=False,
                log_level="info", timeout_graceful_shutdown=int(settings.server.shutdown_grace_s),
                proxy_headers=False, server_header=False)


def _multiprocess_metrics(workers: int) -> str | None:
    """With several workers, metrics go through prometheus-client's shared files so that a
    scrape of any worker sees the sum of all; the directory is emptied so a previous run's dead
    workers are not counted. Must happen before a worker imports prometheus_client."""
    import shutil
    import tempfile

    from gateway.ops.metrics import MULTIPROC_ENV

    path = os.environ.get(MULTIPROC_ENV)
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
        return None  # the operator's directory: emptied, never removed
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def check_config(args: argparse.Namespace) -> int:
    from gateway.guardrails.policy import load_policies

    settings = load_settings(args.path)
    policies = load_policies(settings)  # every team's policy file must load, checks and all
    data = masked(settings)
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    names = ", ".join(sorted(policies)) or "none"
    print(f"# {args.path}: OK (policies: {names})", file=sys.stderr)
    warnings = config_warnings(settings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if warnings and args.strict:
        print(f"# {args.path}: {len(warnings)} warning(s), an error with --strict",
              file=sys.stderr)
        return 1
    return 0
