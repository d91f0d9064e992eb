"""The ``gateway`` command: ``serve``, ``check-config``, ``flags``, ``spend`` and ``audit``.

Each family of commands is a module (``serve``, ``flags``, ``ops``) with its parsers and the
functions that run them; ``COMMANDS`` maps a command to its function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from gateway.cli.flags import add_flags_parser, run_flags
from gateway.cli.ops import add_ops_parsers, run_ops
from gateway.cli.serve import add_serve_parsers, check_config, serve
from gateway.settings import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gateway", description="LLM guardrail gateway")
    sub = p.add_subparsers(dest="command", required=True)
    add_serve_parsers(sub)
    add_flags_parser(sub)
    add_ops_parsers(sub)
    return p


#: command -> what runs it.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": serve,
    "check-config": check_config,
    "flags": run_flags,
    "spend": run_ops,
    "audit": run_ops,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
