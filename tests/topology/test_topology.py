"""Three replicas behind HAProxy on Redis and PostgreSQL, under mixed load, while one replica is
SIGKILLed and another drained with SIGTERM and restarted.

The scenario runs once per module (``scenario``) and each test checks one promise, so a known
defect fails (xfail) on its own without hiding the others:

- client errors are bounded by the requests in flight on the killed replica, and every one of
  them was on that replica (HAProxy's log says where each request went);
- the drain and the restart cost no request, and the restarted replica serves again;
- every answered request (the client got all of it) has its record in PostgreSQL;
- budgets are exact: each team's spend in Redis equals the recorded cost of its answered
  requests, and is never less than what the provider billed.

The SIGKILL is aimed at the worst moment, as a real crash eventually is: while the victim has
streams half generated at the upstream and has just answered a request (whose record and
settlement are still on their way). Steps are ``Step``s triggered by progress; a config reload
step can be added as one more ``Step`` (see ``STEPS``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from tests.fakes.openai_upstream import Bill
from tests.topology.cluster import Budget, Record, Topology
from tests.topology.haproxy import LogEntry
from tests.topology.load import Load, Outcome, plan

REQUESTS = 1500
CONCURRENCY = 30
HOLD_TTL_S = 3.0
TEAMS = {"alpha": "sk-topo-alpha", "beta": "sk-topo-beta"}
PRICE_IN, PRICE_OUT, PRICE_EMBED = 10.0, 30.0, 2.0  # USD per million tokens
VICTIM, DRAINED = "gw0", "gw1"


def gateway_settings(redis_url: str, prefix: str, database_url: str) -> dict[str, Any]:
    return {
        "server": {"shutdown_grace_s": 20},
        "stores": {"budgets": redis_url, "budget_key_prefix": prefix, "logs": database_url,
                   "budget_timeout_s": 2.0, "budget_hold_ttl_s": HOLD_TTL_S},
        "models": [
            {"name": "chat", "provider": "openai", "model": "up-chat", "timeout_s": 20,
             "price": {"input_per_mtok": PRICE_IN, "output_per_mtok": PRICE_OUT}},
            {"name": "embed", "provider": "openai", "model": "up-embed", "timeout_s": 20,
             "price": {"input_per_mtok": PRICE_EMBED, "output_per_mtok": 0.0}},
        ],
        "teams": [{"name": team, "keys": [key], "budget": {"usd": 1000, "period": "month"},
                   "limits": {"rpm": 1_000_000, "tpm": 1_000_000_000}}
                  for team, key in TEAMS.items()],
    }


def provider_cost(bill: Bill) -> int:
    """Micro-dollars the provider charges for a bill, rounded up like the gateway does."""
    if bill.endpoint == "embeddings":
        micro = bill.prompt_tokens * PRICE_EMBED
    else:
        micro = bill.prompt_tokens * PRICE_IN + bill.completion_tokens * PRICE_OUT
    return int(-(-micro // 1))


# --- the scenario ---------------------------------------------------------------------------------


@dataclass
class Kill:
    open_at_haproxy: int = 0  # requests HAProxy had open on the victim just before the kill
    at: float = 0.0  # unix time of the SIGKILL
    waited_s: float = 0.0
    out_after_s: float = 0.0
    streams_mid_generation: int = 0
    just_answered: list[str] = field(default_factory=list)


@dataclass(repr=False)
class Run:
    topology: Topology
    load: Load
    kill: Kill
    events: list[str]
    budgets: dict[str, Budget]
    records: dict[str, Record]
    bills: list[Bill]
    log: list[LogEntry]
    log_server: dict[str, str]  # request id -> replica HAProxy sent it to (last attempt)
    redispatched: int  # requests HAProxy retried on another replica (connection refused)
    duration_s: float


@dataclass(frozen=True)
class Step:
    """A fault injected once ``after`` requests are done; requests from ``hold_from`` on wait
    until it has finished, so that it happens under load on every machine."""

    name: str
    after: int
    hold_from: int
    action: Callable[[Topology, Load, Kill], Awaitable[str]]


async def _unrecorded(conn: asyncpg.Connection, ids: list[str]) -> list[str]:
    rows = await conn.fetch("SELECT request_id FROM requests WHERE request_id = ANY($1)", ids)
    found = {r["request_id"] for r in rows}
    return [rid for rid in ids if rid not in found]


async def _kill_at_worst_moment(topo: Topology, load: Load, kill: Kill, timeout_s: float = 15
                                ) -> None:
    """SIGKILL the victim once it has >= 2 streams half generated upstream and has answered, in
    the last 30 ms, a request whose record is not in PostgreSQL yet (or at the timeout,
    whatever it has then). Runs on its own loop in a thread, beside the load's."""
    conn = await asyncpg.connect(topo.settings["stores"]["logs"], timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            mid = [b for b in topo.in_flight_upstream(VICTIM) if b.stream and b.completion_tokens]
            ledger = topo.fake.ledger
            recent = [o.shot.request_id for o in list(load.outcomes.values())
                      if o.answered and now - o.ended < 0.03
                      and (b := ledger.get(o.shot.request_id)) is not None
                      and topo.upstream_replica(b) == VICTIM]
            unrecorded = await _unrecorded(conn, recent) if len(mid) >= 2 and recent else []
            if unrecorded or now > deadline:
                kill.open_at_haproxy = topo.haproxy.stats()[VICTIM].current
                kill.at = time.time()
                topo.sigkill(VICTIM)
                kill.waited_s = now - (deadline - timeout_s)
                kill.out_after_s = topo.haproxy.wait_status(VICTIM, "DOWN")
                kill.streams_mid_generation, kill.just_answered = len(mid), unrecorded
                return
            await asyncio.sleep(0.002)
    finally:
        await conn.close()


async def sigkill_victim(topo: Topology, load: Load, kill: Kill) -> str:
    await asyncio.to_thread(asyncio.run, _kill_at_worst_moment(topo, load, kill))
    return (f"SIGKILL {VICTIM} (after waiting {kill.waited_s:.2f}s for the moment): "
            f"{kill.open_at_haproxy} requests open on it at HAProxy, "
            f"{kill.streams_mid_generation} streams mid-generation upstream, "
            f"{len(kill.just_answered)} answered in the last 30 ms and not yet recorded; "
            f"HAProxy took it out {kill.out_after_s * 1000:.0f} ms later")


async def drain_and_restart(topo: Topology, load: Load, kill: Kill) -> str:
    status = await asyncio.to_thread(topo.drain, DRAINED)
    took = await asyncio.to_thread(topo.restart, DRAINED)
    return f"SIGTERM {DRAINED}: exit status {status}; restarted and UP in {took:.1f}s"


#: The faults, in order. A config reload step fits here as one more entry, e.g.
#: ``Step("reload x10", after=1100, hold_from=1300, action=reload_ten_times)``.
STEPS = [
    Step("sigkill", after=300, hold_from=600, action=sigkill_victim),
    Step("drain+restart", after=750, hold_from=1050, action=drain_and_restart),
]


async def _drive(topo: Topology, load: Load, kill: Kill) -> list[str]:
    events: list[str] = []
    gates = [load.gate(step.hold_from) for step in STEPS]
    running = asyncio.create_task(load.run())
    try:
        for step, gate in zip(STEPS, gates, strict=True):
            await load.wait_done(step.after)
            events.append(await step.action(topo, load, kill))
            gate.opened.set()
    finally:
        for gate in gates:
            gate.opened.set()  # a failed step must not leave the load waiting forever
        await running
    return events


@pytest.fixture(scope="module")
def scenario(haproxy_available: None, redis_url: str, topology_redis_prefix: str,
             topology_database: str, tmp_path_factory: pytest.TempPathFactory,
             topology_figures: list[str]) -> Run:
    settings = gateway_settings(redis_url, topology_redis_prefix, topology_database)
    with Topology(settings, tmp_path_factory.mktemp("topology")) as topo:
        topo.fake.reply = "one two three four five six seven eight nine ten eleven twelve"
        topo.fake.chunks, topo.fake.chunk_delay_s, topo.fake.latency_s = 6, 0.05, 0.02
        load = Load(topo.url, plan(REQUESTS, TEAMS), concurrency=CONCURRENCY)
        kill = Kill()
        started = time.monotonic()
        events = asyncio.run(_drive(topo, load, kill))
        duration = time.monotonic() - started
        # Holds of the killed replica expire after the hold TTL; then nothing is reserved.
        budgets = {team: topo.wait_budget(team, lambda b: b.reserved_micros == 0,
                                          timeout_s=HOLD_TTL_S * 4 + 10) for team in TEAMS}
        log = topo.haproxy.log()
        log_server = {e.rid: e.server for e in log}
        redispatched = sum(1 for e in log if e.retries.startswith("+"))
        for name, replica in topo.replicas.items():  # flush the survivors' log queues
            if replica.alive:
                topo.drain(name)
        run = Run(topo, load, kill, events, budgets, topo.records(), topo.fake.bills(),
                  log, log_server, redispatched, duration)
    topology_figures.extend(_figures(run))
    return run


# --- figures -----------------------------------------------------------------------------------


def _answered(run: Run) -> list[Outcome]:
    return run.load.answered()


def _missing_records(run: Run) -> list[str]:
    return [o.shot.request_id for o in _answered(run) if o.shot.request_id not in run.records]


def _recorded_cost(run: Run, team: str) -> int:
    return sum(run.records[o.shot.request_id].cost_micros for o in _answered(run)
               if o.shot.team == team and o.shot.request_id in run.records)


def _provider_cost(run: Run, team: str | None = None) -> int:
    teams = {o.shot.request_id: o.shot.team for o in run.load.outcomes.values()}
    return sum(provider_cost(b) for b in run.bills
               if team is None or teams.get(b.request_id) == team)


def _sent_after_kill(run: Run) -> int:
    """Requests HAProxy sent to the victim from the kill on (the log's times are to the ms)."""
    return sum(1 for e in run.log if e.server == VICTIM and e.accepted >= run.kill.at - 0.001)


def _error_line(run: Run, o: Outcome) -> str:
    rid = o.shot.request_id
    bill = next((b for b in run.bills if b.request_id == rid), None)
    upstream = ("not upstream" if bill is None else
                f"upstream via {run.topology.upstream_replica(bill)} "
                f"({'complete' if bill.finished else 'cut'})")
    record = run.records.get(rid)
    return (f"  {rid} via {run.log_server.get(rid, '(not in HAProxy log)')}, {upstream}, "
            f"{'no record' if record is None else f'recorded {record.status}'}: "
            f"{(o.error or '')[:70]}")


def _figures(run: Run) -> list[str]:
    errors = run.load.errors()
    spent = sum(b.spent_micros for b in run.budgets.values())
    billed = _provider_cost(run)
    lines = [f"{REQUESTS} requests at {CONCURRENCY} concurrent in {run.duration_s:.1f}s "
             f"through HAProxy to 3 replicas", *run.events,
             f"client errors: {len(errors)} (bound: {run.kill.open_at_haproxy} in flight on "
             f"{VICTIM} + {_sent_after_kill(run)} sent into its closing port); "
             f"answered: {len(_answered(run))}; redispatched by HAProxy: {run.redispatched}",
             *(_error_line(run, o) for o in errors[:12]),
             f"records missing for answered requests: {len(_missing_records(run))} "
             f"{_missing_records(run)[:10]}"]
    for team, budget in run.budgets.items():
        lines.append(f"team {team}: budget spent {budget.spent_micros} µ$, recorded cost of "
                     f"answered requests {_recorded_cost(run, team)} µ$, provider billed "
                     f"{_provider_cost(run, team)} µ$")
    factor = billed / spent if spent else float("inf")
    lines.append(f"overspend factor (provider billed / gateway spend): {factor:.4f} "
                 f"({billed} / {spent} µ$)")
    return lines


# --- the promises ------------------------------------------------------------------------------


def test_client_errors_are_bounded_by_the_killed_replicas_requests(scenario: Run) -> None:
    """Every error is a request that was on the victim (HAProxy's log, or the upstream's ledger
    when HAProxy closed the client's connection without logging it) or one that ran nowhere
    (no upstream call, no record: safe to retry). Their number is at most what the victim had
    open when it was killed, plus what HAProxy sent into its port in the instant it was dying
    (accepted by the kernel, then reset: HAProxy answers 502 and, rightly, does not retry)."""
    errors = scenario.load.errors()
    bills = {b.request_id: b for b in scenario.bills}
    elsewhere = []
    for o in errors:
        rid = o.shot.request_id
        bill = bills.get(rid)
        server = scenario.log_server.get(rid) or (
            scenario.topology.upstream_replica(bill) if bill else None)
        if server is None and rid in scenario.records:
            server = "a replica (recorded)"
        if server not in (VICTIM, None):
            elsewhere.append((rid, server, o.error))
    assert not elsewhere, f"errors not caused by the SIGKILL of {VICTIM}: {elsewhere}"
    bound = scenario.kill.open_at_haproxy + _sent_after_kill(scenario)
    assert len(errors) <= bound, (
        f"{len(errors)} client errors, but only {bound} requests were in flight on {VICTIM} "
        f"when it was killed")
    assert len(scenario.load.outcomes) == REQUESTS


def test_drain_and_restart_cost_no_request_and_the_replica_serves_again(scenario: Run) -> None:
    on_drained = [o for o in scenario.load.errors()
                  if scenario.log_server.get(o.shot.request_id) == DRAINED]
    assert not on_drained
    late = [s.request_id for s in scenario.load.shots[STEPS[-1].hold_from:]]
    assert any(scenario.log_server.get(rid) == DRAINED for rid in late), (
        f"{DRAINED} served nothing after its restart")


def test_no_request_hangs(scenario: Run) -> None:
    hung = [o.shot.request_id for o in scenario.load.errors() if "timeout" in (o.error or "")]
    assert not hung


@pytest.mark.xfail(strict=True, reason="issue 12 item 6: a SIGKILLed replica loses the records "
                   "of requests it had already answered (still in its in-memory log queue)")
def test_every_answered_request_is_recorded(scenario: Run) -> None:
    assert _missing_records(scenario) == []


@pytest.mark.xfail(strict=True, reason="issue 12 item 6: the records the SIGKILLed replica lost "
                   "are of requests whose cost its budget settle had already charged")
def test_team_spend_equals_the_recorded_cost_of_answered_requests(scenario: Run) -> None:
    for team, budget in scenario.budgets.items():
        assert budget.spent_micros == _recorded_cost(scenario, team), team


@pytest.mark.xfail(strict=True, reason="issue 12 item 4: the killed replica's holds expire and "
                   "are handed back, though the provider billed those requests")
def test_team_spend_is_never_less_than_the_provider_billed(scenario: Run) -> None:
    for team, budget in scenario.budgets.items():
        assert budget.spent_micros >= _provider_cost(scenario, team), team


def test_the_load_reached_every_replica(scenario: Run) -> None:
    servers = set(scenario.log_server.values())
    assert set(scenario.topology.replicas) <= servers, servers
