"""A whole deployment on loopback: N gateway replicas behind HAProxy, on Redis and PostgreSQL.

``Topology`` starts the fake OpenAI-compatible upstream, writes one config file per replica
(identical but for the upstream key, ``sk-upstream-<replica>``, so the upstream's ledger tells
which replica sent each request), starts the replicas as real processes and HAProxy in front,
and offers what a fault test needs: SIGKILL, SIGTERM drain, restart, the records in PostgreSQL,
a team's budget from the admin API. Leaving the ``with`` block stops every process it started,
whatever happened inside.

Every helper here blocks; from async test code call them through ``asyncio.to_thread``.

For a config reload under load (not built yet): ``write_config`` rewrites every replica's file,
then signal each replica (SIGHUP, or POST /admin/reload through ``url``), as one more ``Step``
of tests/topology/test_topology.py.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import yaml

from tests.fakes.openai_upstream import Bill, FakeOpenAI, running_fake_openai
from tests.services import run_async
from tests.topology.haproxy import HAProxy
from tests.topology.replica import Replica, listening_port

ADMIN_KEY = "sk-topology-admin"


@dataclass(frozen=True)
class Record:
    """A request record as stored in PostgreSQL (the columns a topology test checks)."""

    request_id: str
    team: str | None
    endpoint: str
    stream: bool
    status: int
    cost_micros: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Budget:
    team: str
    limit_micros: int | None
    spent_micros: int
    reserved_micros: int


def _micros(usd: float | None) -> int:
    return 0 if usd is None else round(usd * 1_000_000)


class Topology:
    def __init__(self, settings: dict[str, Any], workdir: Path, *, replicas: int = 3,
                 check_inter_ms: int = 300) -> None:
        """``settings``: the gateway config every replica runs (its models may leave
        ``api_base`` / ``api_key`` unset: they are pointed at the fake upstream here)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.replicas = {f"gw{i}": Replica(f"gw{i}", listening_port(), workdir / f"gw{i}.yaml",
                                           workdir) for i in range(replicas)}
        self.check_inter_ms = check_inter_ms
        self._stack = contextlib.ExitStack()
        self.fake: FakeOpenAI
        self.haproxy: HAProxy

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> Topology:
        try:
            self.fake = self._stack.enter_context(running_fake_openai())
            self.write_config(self.settings)
            for r in self.replicas.values():
                self._stack.callback(r.stop)
                r.start()  # all at once: they start in parallel
            for r in self.replicas.values():
                self._ready_on_some_port(r)
            self.haproxy = HAProxy(self.workdir / "haproxy",
                                   {n: r.port for n, r in self.replicas.items()},
                                   check_inter_ms=self.check_inter_ms)
            self._stack.callback(self.haproxy.stop)
            self.haproxy.start()
            for name in self.replicas:
                self.haproxy.wait_status(name, "UP")
        except BaseException:
            self._stack.close()
            raise
        return self

    def _ready_on_some_port(self, replica: Replica, attempts: int = 3) -> None:
        """Wait for a replica's first start; if its port was taken meanwhile, move it (nothing
        points at it yet: HAProxy starts after the replicas)."""
        for attempt in range(attempts):
            try:
                replica.wait_ready()
                return
            except RuntimeError:
                if replica.alive or "address already in use" not in replica.tail():
                    raise
                if attempt == attempts - 1:
                    raise
                replica.port = listening_port()
                replica.start()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def url(self) -> str:
        """Where clients go: HAProxy."""
        return self.haproxy.url

    def write_config(self, settings: dict[str, Any]) -> None:
        """(Re)write every replica's config file; a replica reads it when it starts."""
        self.settings = settings
        for name, replica in self.replicas.items():
            replica.config.write_text(yaml.safe_dump(self._replica_settings(name)))

    def _replica_settings(self, name: str) -> dict[str, Any]:
        cfg: dict[str, Any] = orjson.loads(orjson.dumps(self.settings))  # a deep copy
        cfg.setdefault("server", {}).setdefault("admin_keys", [ADMIN_KEY])
        for model in cfg.get("models", []):
            if model.get("provider") == "openai":
                model.setdefault("api_base", self.fake.url)
                model.setdefault("api_key", f"sk-upstream-{name}")
        return cfg

    # --- faults ----------------------------------------------------------------------------------

    def sigkill(self, name: str) -> None:
        self.replicas[name].sigkill()

    def freeze(self, name: str) -> None:
        self.replicas[name].freeze()

    def thaw(self, name: str) -> None:
        self.replicas[name].thaw()

    def drain(self, name: str) -> int | None:
        """SIGTERM and wait until the replica has exited (in-flight requests finished)."""
        return self.replicas[name].drain()

    def restart(self, name: str) -> float:
        """Start the replica again and wait until HAProxy sends it traffic; seconds taken."""
        start = time.monotonic()
        self.replicas[name].restart()
        self.haproxy.wait_status(name, "UP")
        return time.monotonic() - start

    def in_flight_upstream(self, name: str) -> list[Bill]:
        """Requests this replica has open at the upstream right now."""
        key = f"sk-upstream-{name}"
        return [b for b in self.fake.bills() if b.api_key == key and b.finished is None]

    def upstream_replica(self, bill: Bill) -> str:
        return bill.api_key.removeprefix("sk-upstream-")

    # --- what the stores hold --------------------------------------------------------------------

    def records(self) -> dict[str, Record]:
        """Every request record in PostgreSQL, by request id."""
        url = self.settings["stores"]["logs"]

        async def fetch() -> list[Any]:
            conn = await asyncpg.connect(url, timeout=10)
            try:
                return list(await conn.fetch(
                    "SELECT request_id, team, endpoint, stream, status, cost_micros, "
                    "prompt_tokens, completion_tokens FROM requests"))
            finally:
                await conn.close()

        rows = run_async(fetch)
        return {r["request_id"]: Record(r["request_id"], r["team"], r["endpoint"],
                                        bool(r["stream"]), int(r["status"]),
                                        int(r["cost_micros"]), int(r["prompt_tokens"]),
                                        int(r["completion_tokens"])) for r in rows}

    def admin(self, path: str) -> Any:
        """GET an admin API path through HAProxy, with the admin key."""
        req = urllib.request.Request(self.url + path,
                                     headers={"authorization": f"Bearer {ADMIN_KEY}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return orjson.loads(r.read())

    def budget(self, team: str) -> Budget:
        body = self.admin(f"/admin/teams/{team}/budget")
        limit = body.get("limit_usd")
        return Budget(team, None if limit is None else _micros(limit),
                      _micros(body.get("spent_usd")), _micros(body.get("reserved_usd")))

    def wait_budget(self, team: str, ready: Callable[[Budget], bool], timeout_s: float
                    ) -> Budget:
        """Poll the team's budget until ``ready`` says so (e.g. nothing reserved any more)."""
        deadline = time.monotonic() + timeout_s
        while True:
            budget = self.budget(team)
            if ready(budget) or time.monotonic() > deadline:
                return budget
            time.sleep(0.2)
