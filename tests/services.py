"""Real PostgreSQL and Redis for the tests: the ones named by the environment, or throwaway servers.

The rules (CONTRACT.md, section 1):

* ``DATABASE_URL`` / ``REDIS_URL`` set: use that server.
* otherwise start a throwaway ``postgres`` (``initdb`` + ``pg_ctl``) / ``redis-server`` on a free
  loopback port for the whole session, in a temporary directory removed at the end;
* neither possible: the tests that need the service are skipped, and the reason is printed in the
  terminal summary; with ``CI=true`` a missing service fails those tests instead.

Tests never share state through the server: every test gets its own database
(``gw_test_<random>``, dropped afterwards) and its own Redis key prefix (deleted afterwards).

PostgreSQL refuses to run as root, so when the tests run as root the cluster is created and
started as an unprivileged user (``postgres`` if it exists, else ``nobody``) owning the temp dir.

Fixtures: ``postgres_server`` (session; admin URL), ``postgres_url`` (fresh database per test),
``redis_url`` (session), ``redis_prefix`` (per test). Registered by ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis

__all__ = ["postgres_server", "postgres_url", "redis_prefix", "redis_url"]

T = TypeVar("T")
_UNAVAILABLE = pytest.StashKey[list[str]]()
_START_TIMEOUT_S = 60


class ServiceUnavailable(Exception):
    """A service can be neither reached nor started; the message says why."""


# --- skip or fail --------------------------------------------------------------------------------


def _unavailable(config: pytest.Config, reason: str) -> NoReturn:
    """Skip (printed in the summary), or fail under ``CI=true`` where a skip would hide a gap."""
    config.stash.setdefault(_UNAVAILABLE, []).append(reason)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    reasons = config.stash.get(_UNAVAILABLE, [])
    if reasons:
        terminalreporter.section("services not available")
        for reason in reasons:
            terminalreporter.line(reason)


# --- small helpers -------------------------------------------------------------------------------


def _start_or_reason(start: Callable[[], T]) -> T | str:
    """The started server, or why it could not start (returned, not raised, so that the skip or
    failure is reported without a chained traceback)."""
    try:
        return start()
    except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
        return str(exc)


def free_port() -> int:
    """A loopback port free right now (the server binding it later may still race; callers
    retry with another port when the start fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in another thread.

    Fixtures here are synchronous and may be set up while a test's event loop is running (an
    async fixture calling ``getfixturevalue``); a separate thread keeps the two loops apart.
    """
    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- PostgreSQL ----------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then Debian's layout."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: _version_key(p.parent.name), reverse=True)
    for bindir in candidates:
        if all((bindir / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise ServiceUnavailable("running as root and no 'postgres' or 'nobody' user to run "
                             "PostgreSQL as")


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp dir: trust auth, loopback TCP, sockets in the temp dir."""

    bindir: Path
    root: Path
    ids: tuple[int, int] | None
    port: int = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *args: str) -> None:
        """Run a PostgreSQL tool as the cluster's owner; a failure raises ServiceUnavailable."""
        uid, gid = self.ids if self.ids is not None else (None, None)
        proc = subprocess.run([str(self.bindir / args[0]), *args[1:]], cwd=self.root,
                              user=uid, group=gid, extra_groups=[] if uid is not None else None,
                              capture_output=True, text=True, timeout=_START_TIMEOUT_S + 10,
                              check=False)
        if proc.returncode != 0:
            raise ServiceUnavailable(f"{args[0]} failed ({proc.returncode}): "
                                     f"{proc.stderr.strip()[-800:]}")

    def init(self) -> None:
        self.root.chmod(0o700)
        if self.ids is not None:
            os.chown(self.root, *self.ids)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self, attempts: int = 3) -> None:
        """``pg_ctl start -w`` on a free port; durability is off, since the data is thrown away."""
        for attempt in range(attempts):
            self.port = free_port()
            options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -F "
                       "-c full_page_writes=off -c synchronous_commit=off")
            try:
                self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                         "-w", "-t", str(_START_TIMEOUT_S), "-o", options, "start")
                return
            except ServiceUnavailable as exc:
                if attempt == attempts - 1:
                    raise ServiceUnavailable(
                        f"{exc}\n{_tail(self.root / 'postgres.log')}") from None

    def stop(self) -> None:
        try:
            self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> ThrowawayPostgres:
    bindir = _pg_bindir()
    if bindir is None:
        raise ServiceUnavailable("DATABASE_URL is not set and no PostgreSQL binaries (initdb, "
                                 "pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin")
    server = ThrowawayPostgres(bindir=bindir, root=Path(tempfile.mkdtemp(prefix="gw-test-pg-")),
                               ids=_unprivileged_ids())
    try:
        server.init()
        server.start()
    except BaseException:
        shutil.rmtree(server.root, ignore_errors=True)
        raise
    return server


async def _pg_ping(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def _pg_problem(url: str) -> str | None:
    try:
        run_async(lambda: _pg_ping(url))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    return None


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    """Connections a test left open are terminated first, or DROP DATABASE would refuse."""
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of a PostgreSQL server (and a database on it) from which tests create databases."""
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        problem = _pg_problem(env_url)
        if problem:
            _unavailable(pytestconfig, f"DATABASE_URL={_masked(env_url)} does not answer: "
                                       f"{problem}")
        yield env_url
        return
    server = _start_or_reason(start_postgres)
    if isinstance(server, str):
        _unavailable(pytestconfig, f"no PostgreSQL for the tests: {server}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A ``postgresql://`` URL of a database made for this test alone, dropped afterwards."""
    name = f"gw_test_{secrets.token_hex(6)}"
    run_async(lambda: _create_database(postgres_server, name))
    try:
        yield with_database(postgres_server, name)
    finally:
        run_async(lambda: _drop_database(postgres_server, name))


# --- Redis ---------------------------------------------------------------------------------------


def _redis_ping(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    finally:
        client.close()


def _redis_problem(url: str) -> str | None:
    try:
        _redis_ping(url)
    except (redis.RedisError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return None


@dataclass
class ThrowawayRedis:
    """A ``redis-server`` without persistence on a loopback port; its own child process."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_for_redis(server: ThrowawayRedis, timeout_s: float = 10.0) -> bool:
    """True once the server answers PING; False if it exited (port taken) or never answered."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return False
        try:
            _redis_ping(server.url)
            return True
        except redis.RedisError:
            time.sleep(0.05)
    return False


def start_redis(attempts: int = 3) -> ThrowawayRedis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable("REDIS_URL is not set and no redis-server on PATH")
    root = Path(tempfile.mkdtemp(prefix="gw-test-redis-"))
    for _ in range(attempts):
        port = free_port()
        with (root / "redis.log").open("ab") as log:
            proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(root)],
                stdout=log, stderr=subprocess.STDOUT)
        server = ThrowawayRedis(proc=proc, port=port, root=root)
        if _wait_for_redis(server):
            return server
        proc.kill()
        proc.wait()
    log_tail = _tail(root / "redis.log")
    shutil.rmtree(root, ignore_errors=True)
    raise ServiceUnavailable(f"redis-server did not start:\n{log_tail}")


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """URL of a Redis server; share it only through ``redis_prefix`` key prefixes."""
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        problem = _redis_problem(env_url)
        if problem:
            _unavailable(pytestconfig, f"REDIS_URL={_masked(env_url)} does not answer: {problem}")
        yield env_url
        return
    server = _start_or_reason(start_redis)
    if isinstance(server, str):
        _unavailable(pytestconfig, f"no Redis for the tests: {server}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test (``gwtest:<hex>:``); its keys are deleted afterwards."""
    prefix = f"gwtest:{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()
