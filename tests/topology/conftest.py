"""Fixtures of the topology tests: a database and a Redis prefix per module, and a place for the
figures a scenario measured, printed in the terminal summary (they are the point of the run)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import redis

from tests.services import _create_database, _drop_database, run_async, with_database
from tests.topology.haproxy import haproxy_binary

_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="module")
def topology_database(postgres_server: str) -> Iterator[str]:
    """Like ``postgres_url``, but for a whole module: one scenario, several tests checking it."""
    name = f"gw_test_{secrets.token_hex(6)}"
    run_async(lambda: _create_database(postgres_server, name))
    try:
        yield with_database(postgres_server, name)
    finally:
        run_async(lambda: _drop_database(postgres_server, name))


@pytest.fixture(scope="module")
def topology_redis_prefix(redis_url: str) -> Iterator[str]:
    """Like ``redis_prefix``, for a whole module; its keys are deleted afterwards."""
    prefix = f"gwtest:{secrets.token_hex(6)}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()


@pytest.fixture(scope="session")
def haproxy_available(pytestconfig: pytest.Config) -> None:
    """Skip without HAProxy (printed), or fail under ``CI=true`` as a missing service does."""
    if haproxy_binary() is None:
        reason = "haproxy is not installed (tests/prepare.sh installs it as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing tool is a failure)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def topology_figures(pytestconfig: pytest.Config) -> list[str]:
    """Lines appended here are printed under "topology figures" at the end of the run."""
    return pytestconfig.stash.setdefault(_FIGURES, [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("topology figures")
        for line in lines:
            terminalreporter.line(line)
