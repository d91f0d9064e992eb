"""Mixed client load (chat, streamed chat, embeddings) through the load balancer, with each
request's outcome as the client saw it.

Every request carries its own ``x-request-id`` (the gateway keeps a sane client id as the
record's id and passes it upstream), so one id follows a request through HAProxy's log, the
upstream's ledger and the PostgreSQL records. A request counts as *answered* only when the
client got all of it: a 2xx with a complete JSON body, or a stream that ended with
``data: [DONE]`` and carried no error event. Anything else is an error with a reason.

``Gate``s hold back the requests from a given index on until a fault step has happened, so the
steps land in the middle of the load however fast or slow the machine is.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson

Kind = Literal["chat", "stream", "embeddings"]
_PATHS: dict[Kind, str] = {"chat": "/v1/chat/completions", "stream": "/v1/chat/completions",
                           "embeddings": "/v1/embeddings"}


@dataclass(frozen=True)
class Shot:
    """One planned request."""

    index: int
    kind: Kind
    team: str
    key: str

    @property
    def request_id(self) -> str:
        return f"topo-{self.index:05d}-{self.kind}"


@dataclass
class Outcome:
    shot: Shot
    started: float
    ended: float = 0.0
    status: int | None = None  # None: no response head at all
    answered: bool = False
    error: str | None = None


@dataclass
class Gate:
    """Requests with ``index >= at`` wait until ``opened`` is set."""

    at: int
    opened: asyncio.Event = field(default_factory=asyncio.Event)


def plan(n: int, keys: dict[str, str], *, seed: int = 18,
         mix: dict[Kind, float] | None = None) -> list[Shot]:
    """``n`` requests of mixed kinds, spread over the teams of ``keys`` (team -> client key),
    in a fixed pseudo-random order."""
    rng = random.Random(seed)
    weights = mix or {"chat": 0.45, "stream": 0.35, "embeddings": 0.20}
    kinds: list[Kind] = rng.choices(list(weights), weights=list(weights.values()), k=n)
    teams = sorted(keys)
    return [Shot(i, kind, teams[i % len(teams)], keys[teams[i % len(teams)]])
            for i, kind in enumerate(kinds)]


def default_body(shot: Shot) -> dict[str, Any]:
    if shot.kind == "embeddings":
        return {"model": "embed", "input": f"text number {shot.index}"}
    return {"model": "chat", "max_tokens": 40, "stream": shot.kind == "stream",
            "messages": [{"role": "user", "content": f"request {shot.index}"}]}


class Load:
    def __init__(self, url: str, shots: list[Shot], *, concurrency: int = 30,
                 timeout_s: float = 20.0,
                 body: Callable[[Shot], dict[str, Any]] = default_body) -> None:
        self.url = url
        self.shots = shots
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.body = body
        self.outcomes: dict[str, Outcome] = {}
        self.done = 0
        self.gates: list[Gate] = []
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def gate(self, at: int) -> Gate:
        g = Gate(at)
        self.gates.append(g)
        return g

    async def wait_done(self, count: int) -> None:
        """Until ``count`` requests have ended (or the load has, with fewer)."""
        event = asyncio.Event()
        self._waiters.append((count, event))
        self._wake()
        await event.wait()

    def _wake(self, finished: bool = False) -> None:
        for count, event in self._waiters:
            if self.done >= count or finished:
                event.set()

    def answered(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.answered]

    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if not o.answered]

    async def run(self) -> None:
        queue = iter(self.shots)
        connector = aiohttp.TCPConnector(limit=self.concurrency * 2)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            async def worker() -> None:
                for shot in queue:
                    for g in self.gates:
                        if shot.index >= g.at:
                            await g.opened.wait()
                    await self._one(http, shot)
                    self.done += 1
                    self._wake()

            try:
                await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            finally:
                self._wake(finished=True)

    async def _one(self, http: aiohttp.ClientSession, shot: Shot) -> None:
        out = self.outcomes[shot.request_id] = Outcome(shot, time.monotonic())
        headers = {"authorization": f"Bearer {shot.key}", "x-request-id": shot.request_id}
        try:
            async with http.post(self.url + _PATHS[shot.kind], headers=headers,
                                 data=orjson.dumps(self.body(shot))) as r:
                out.status = r.status
                if shot.kind == "stream" and r.status == 200:
                    out.error = await _read_stream(r)
                else:
                    raw = await r.read()
                    if r.status // 100 != 2:
                        out.error = f"http {r.status}: {raw[:200]!r}"
                    else:
                        orjson.loads(raw)  # a complete JSON answer, or an error below
            out.answered = out.error is None
        except TimeoutError:
            out.error = "timeout (no complete answer)"
        except (aiohttp.ClientError, orjson.JSONDecodeError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        finally:
            out.ended = time.monotonic()


async def _read_stream(r: aiohttp.ClientResponse) -> str | None:
    """None when the stream is complete; else what was wrong with it."""
    done = False
    async for line in r.content:
        if line.startswith(b"data: [DONE]"):
            done = True
        elif line.startswith(b"data: ") and b'"error"' in line[:20]:
            return f"error event: {line[:200]!r}"
    return None if done else "stream ended without [DONE]"
