"""The ``gateway`` command: ``serve``, ``check-config``, ``flags``, ``spend`` and ``audit``.

Each family of commands is a module (``serve``, ``flags``, ``ops``) with its parsers and the
functions that run them; ``COMMANDS`` maps a command to its function.
"""

from __future__ import annotations

import argparse
import os
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


#: The exit status of a command whose reader went away: a shell's for SIGPIPE (128 + 13).
BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """``gateway ... | head``: the reader has what it wanted. Stop quietly; stdout goes to
    /dev/null so that the interpreter's last flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE
