"""Three replicas behind HAProxy on Redis and PostgreSQL, under mixed load, while one replica is
SIGKILLed and another drained with SIGTERM and restarted.

The scenario runs once per module (``scenario``) and each test checks one promise, so a known
defect fails (xfail) on its own without hiding the others:

- client errors are bounded by the requests in flight on the killed replica, and every one of
  them was on that replica (HAProxy's log and the upstream's ledger say where each went), or
  ran nowhere at all (a connection closed without an answer: free, retry-safe);
- the drain and the restart cost no request, and the restarted replica serves again;
- no request hangs;
- every answered request (the client got all of it) has its record in PostgreSQL (xfail: issue
  12 item 6), and no record is lost but those only the killed replica held;
- budgets are exact: each team's spend in Redis is the recorded cost of its answered requests
  (give or take the records the killed replica lost), and never less than what the provider
  billed (xfail: issue 12 item 4).

The SIGKILL is aimed at the worst moment, as a real crash eventually is: while the victim has
streams half generated at the upstream and has just answered requests whose records are still
in its memory (see ``_kill_at_worst_moment``), so the known defects show on every run.
Faults are ``Step``s triggered by progress; a config reload step can be added as one more
``Step`` (see ``STEPS``).
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
class Faults:
    """What the fault steps did and measured."""

    open_at_haproxy: int = 0  # requests HAProxy had open on the victim just before the kill
    at: float = 0.0  # unix time of the SIGKILL
    waited_s: float = 0.0
    out_after_s: float = 0.0
    streams_mid_generation: int = 0
    just_answered: list[str] = field(default_factory=list)
    drain_from: float = 0.0  # time.monotonic() of the SIGTERM
    drain_to: float = 0.0  # ... and of the drained replica's return to rotation


@dataclass(repr=False)
class Run:
    topology: Topology
    load: Load
    faults: Faults
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
    action: Callable[[Topology, Load, Faults], Awaitable[str]]


async def _unrecorded(conn: asyncpg.Connection, ids: list[str]) -> list[str]:
    rows = await conn.fetch("SELECT request_id FROM requests WHERE request_id = ANY($1)", ids)
    found = {r["request_id"] for r in rows}
    return [rid for rid in ids if rid not in found]


def _answered_by(topo: Topology, load: Load, replica: str) -> list[Outcome]:
    ledger = topo.fake.ledger
    return [o for o in list(load.outcomes.values()) if o.answered
            and (b := ledger.get(o.shot.request_id)) is not None
            and topo.upstream_replica(b) == replica]


async def _inserting(conn: asyncpg.Connection) -> int:
    """Statements writing request records that PostgreSQL is executing right now."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state <> 'idle' AND query ILIKE 'INSERT INTO requests%' AND pid <> pg_backend_pid()")
    return n


async def _kill_at_worst_moment(topo: Topology, load: Load, faults: Faults, timeout_s: float = 15
                                ) -> None:
    """SIGKILL the victim while it has >= 2 streams half generated upstream and has answered
    requests whose records are not in PostgreSQL (or at the timeout, whatever it has then).
    Runs on its own loop in a thread, beside the load's.

    To know which records the kill loses, the victim is frozen (SIGSTOP) first, at a moment it
    has just answered a request: nothing more leaves it, PostgreSQL finishes whatever it had
    already received, and then the answered requests still without a record are exactly those
    whose records exist only in the victim's memory. Then SIGKILL (or SIGCONT, and try again, if
    there are none). To the rest of the system this is a crash after a ~100 ms stall."""
    conn = await asyncpg.connect(topo.settings["stores"]["logs"], timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            mid = [b for b in topo.in_flight_upstream(VICTIM) if b.stream and b.completion_tokens]
            recent = [o for o in _answered_by(topo, load, VICTIM) if now - o.ended < 0.03]
            if (len(mid) >= 2 and recent) or now > deadline:
                topo.freeze(VICTIM)
                for _ in range(100):  # what PostgreSQL (and the clients) already received lands
                    await asyncio.sleep(0.01)
                    if not await _inserting(conn):
                        break
                mine = [o.shot.request_id for o in _answered_by(topo, load, VICTIM)]
                unrecorded = await _unrecorded(conn, mine)
                if unrecorded or now > deadline:
                    faults.open_at_haproxy = topo.haproxy.stats()[VICTIM].current
                    faults.at = time.time()
                    topo.sigkill(VICTIM)
                    faults.waited_s = now - (deadline - timeout_s)
                    faults.out_after_s = topo.haproxy.wait_status(VICTIM, "DOWN")
                    faults.streams_mid_generation, faults.just_answered = len(mid), unrecorded
                    return
                topo.thaw(VICTIM)
            await asyncio.sleep(0.002)
    finally:
        await conn.close()


async def sigkill_victim(topo: Topology, load: Load, faults: Faults) -> str:
    await asyncio.to_thread(asyncio.run, _kill_at_worst_moment(topo, load, faults))
    return (f"SIGKILL {VICTIM} (after waiting {faults.waited_s:.2f}s for the moment): "
            f"{faults.open_at_haproxy} requests open on it at HAProxy, "
            f"{faults.streams_mid_generation} streams mid-generation upstream, "
            f"{len(faults.just_answered)} answered whose records were only in its memory; "
            f"HAProxy took it out {faults.out_after_s * 1000:.0f} ms later")


async def drain_and_restart(topo: Topology, load: Load, faults: Faults) -> str:
    faults.drain_from = time.monotonic()
    status = await asyncio.to_thread(topo.drain, DRAINED)
    took = await asyncio.to_thread(topo.restart, DRAINED)
    faults.drain_to = time.monotonic()
    return f"SIGTERM {DRAINED}: exit status {status}; restarted and UP in {took:.1f}s"


#: The faults, in order. A config reload step fits here as one more entry, e.g.
#: ``Step("reload x10", after=1100, hold_from=1300, action=reload_ten_times)``.
STEPS = [
    Step("sigkill", after=300, hold_from=600, action=sigkill_victim),
    Step("drain+restart", after=750, hold_from=1050, action=drain_and_restart),
]


async def _drive(topo: Topology, load: Load, faults: Faults) -> list[str]:
    events: list[str] = []
    gates = [load.gate(step.hold_from) for step in STEPS]
    running = asyncio.create_task(load.run())
    try:
        for step, gate in zip(STEPS, gates, strict=True):
            await load.wait_done(step.after)
            events.append(await step.action(topo, load, faults))
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
        faults = Faults()
        started = time.monotonic()
        events = asyncio.run(_drive(topo, load, faults))
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
        run = Run(topo, load, faults, events, budgets, topo.records(), topo.fake.bills(),
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
    return sum(1 for e in run.log if e.server == VICTIM and e.accepted >= run.faults.at - 0.001)


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
             f"client errors: {len(errors)}, of which {len(_silent(run))} ran nowhere "
             f"(connection closed without an answer, retry-safe; "
             f"{len(_silent_in_drain(run))} of them during the drain); bound: "
             f"{run.faults.open_at_haproxy} in flight on {VICTIM} + {_sent_after_kill(run)} sent "
             f"into its closing port; answered: {len(_answered(run))}; "
             f"redispatched by HAProxy: {run.redispatched}",
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


def _where(run: Run, o: Outcome) -> str | None:
    """The replica an errored request was on: HAProxy's log, else the upstream's ledger, else
    its record; None when it ran nowhere."""
    rid = o.shot.request_id
    bill = next((b for b in run.bills if b.request_id == rid), None)
    if rid in run.log_server:
        return run.log_server[rid]
    if bill is not None:
        return run.topology.upstream_replica(bill)
    return "a replica (it has a record)" if rid in run.records else None


def _silent(run: Run) -> list[Outcome]:
    """Errors that ran nowhere: the client's keep-alive connection was closed with no answer and
    no log line. HAProxy does that on purpose when a replica closes or resets a connection
    before answering (a replica dying, or one whose port closes under SIGTERM with connections
    still in its accept queue), so that the client may retry; nothing was billed or recorded."""
    return [o for o in run.load.errors() if _where(run, o) is None]


def _silent_in_drain(run: Run) -> list[Outcome]:
    """Silent errors that ended while the drained replica was away: requests HAProxy sent it as
    SIGTERM closed its port (they sat in its accept queue and were reset)."""
    return [o for o in _silent(run) if run.faults.drain_from <= o.ended <= run.faults.drain_to]


def test_client_errors_are_bounded_by_the_killed_replicas_requests(scenario: Run) -> None:
    """Every error is a request that was on the victim (HAProxy's log, or the upstream's ledger
    when HAProxy closed the client's connection without logging it), at most what the victim
    had open when it was killed plus what HAProxy sent into its port while it was dying; or one
    that ran nowhere (``_silent``): free, and safe for the client to retry."""
    errors = scenario.load.errors()
    on = [o for o in errors if _where(scenario, o) is not None]
    elsewhere = [(o.shot.request_id, _where(scenario, o), o.error)
                 for o in on if _where(scenario, o) != VICTIM]
    assert not elsewhere, f"errors not caused by the SIGKILL of {VICTIM}: {elsewhere}"
    bound = scenario.faults.open_at_haproxy + _sent_after_kill(scenario)
    assert len(on) <= bound, (
        f"{len(on)} client errors on {VICTIM}, but only {bound} requests were in flight on it "
        f"when it was killed")
    assert len(_silent(scenario)) <= scenario.faults.open_at_haproxy
    assert len(scenario.load.outcomes) == REQUESTS


def test_drain_and_restart_cost_no_request_and_the_replica_serves_again(scenario: Run) -> None:
    on_drained = [o.shot.request_id for o in scenario.load.errors()
                  if _where(scenario, o) == DRAINED]
    assert not on_drained
    late = [s.request_id for s in scenario.load.shots[STEPS[-1].hold_from:]]
    assert any(scenario.log_server.get(rid) == DRAINED for rid in late), (
        f"{DRAINED} served nothing after its restart")


def test_no_request_hangs(scenario: Run) -> None:
    hung = [o.shot.request_id for o in scenario.load.errors() if "timeout" in (o.error or "")]
    assert not hung


def test_no_record_is_lost_but_those_only_the_killed_replica_held(scenario: Run) -> None:
    """The drain, the restart and the survivors lose nothing: a missing record can only be one
    the victim still held in memory when it died (measured at its freeze, see above)."""
    assert set(_missing_records(scenario)) <= set(scenario.faults.just_answered)


@pytest.mark.xfail(strict=True, reason="issue 12 item 6: a SIGKILLed replica loses the records "
                   "of requests it had already answered (still in its in-memory log queue)")
def test_every_answered_request_is_recorded(scenario: Run) -> None:
    assert _missing_records(scenario) == []


def test_team_spend_is_the_recorded_cost_give_or_take_the_lost_records(scenario: Run) -> None:
    """Budgets are exact: the spend in Redis is the recorded cost of the answered requests, plus
    at most the price of the answered requests whose records the killed replica lost (their
    settlement may or may not have reached Redis before it died). Equality once no record is
    lost (issue 12 item 6)."""
    bills = {b.request_id: b for b in scenario.bills}
    for team, budget in scenario.budgets.items():
        recorded = _recorded_cost(scenario, team)
        lost = sum(provider_cost(bills[rid]) for rid in _missing_records(scenario)
                   if rid in bills and scenario.load.outcomes[rid].shot.team == team)
        assert recorded <= budget.spent_micros <= recorded + lost, (team, lost)


@pytest.mark.xfail(strict=True, reason="issue 12 item 4: the killed replica's holds expire and "
                   "are handed back, though the provider billed those requests")
def test_team_spend_is_never_less_than_the_provider_billed(scenario: Run) -> None:
    for team, budget in scenario.budgets.items():
        assert budget.spent_micros >= _provider_cost(scenario, team), team


def test_the_load_reached_every_replica(scenario: Run) -> None:
    servers = set(scenario.log_server.values())
    assert set(scenario.topology.replicas) <= servers, servers
