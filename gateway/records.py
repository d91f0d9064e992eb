"""Request records and the background writer that puts them in the log store off the request path.

Every request, served or refused, ends as one ``RequestRecord``. The request path only appends to
a bounded queue (never awaits the database); a single task drains it in batches. When the queue
is full the record is dropped and counted, because a slow database must never slow or fail a
request; the drop counter is exported as a metric so that loss is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.tasks import Background

log = logging.getLogger("gateway.records")


class RequestIds:
    """Unique ids without a system call per request: a random per-process prefix (64 bits, so
    replicas and workers never collide) and a counter. Request ids and budget hold ids."""

    def __init__(self, kind: str = "req_") -> None:
        self._prefix = f"{kind}{os.urandom(8).hex()}"
        self._next = itertools.count(1).__next__

    def new(self) -> str:
        return f"{self._prefix}{self._next():08x}"


@dataclass(frozen=True, slots=True)
class FindingEntry:
    """One finding of a fired rule: its label and score, and where it is in the stored text
    (offsets into the redacted copy, never the matched text)."""

    label: str
    score: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """A rule that fired on a request. Stored as JSON with the record and the review item, in
    this field order (``public``)."""

    rule: str
    check: str
    action: str  # block | redact | mask | flag
    direction: str  # input | output ("" in records written before it was kept)
    shadow: bool
    findings: tuple[FindingEntry, ...]

    @property
    def queues(self) -> bool:
        """Whether it puts the request in the review queue."""
        return self.action in ("block", "flag")

    def public(self) -> dict[str, Any]:
        return {"rule": self.rule, "check": self.check, "action": self.action,
                "direction": self.direction, "shadow": self.shadow,
                "findings": [{"label": f.label, "score": f.score, "start": f.start, "end": f.end}
                             for f in self.findings]}


@dataclass(slots=True)
class RequestRecord:
    """One logged request. Mutable while the request runs; frozen in practice once submitted."""

    request_id: str
    created_at: float  # unix seconds
    endpoint: str  # chat | completions | embeddings
    team: str | None = None
    key_id: str | None = None
    model: str | None = None  # the alias the client sent
    upstream_model: str | None = None
    provider: str | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micros: int = 0
    usage_estimated: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    upstream_ms: float | None = None
    status: int = 200
    error_code: str | None = None
    finish_reason: str | None = None
    flagged: bool = False
    #: Rules that fired, in the order they fired (``note_rules``).
    rules: list[RuleEntry] = field(default_factory=list)
    #: The redacted prompt and response, kept only for flagged records (the review queue).
    #: Never raw text: the policy code fills these from its redacted views.
    review_prompt: str | None = None
    review_response: str | None = None
    started: float = field(default_factory=time.perf_counter, repr=False)

    def note_rules(self, entries: list[RuleEntry]) -> None:
        """Rules fired on this request; a ``block`` or ``flag`` puts it in the review queue.
        The one place a fired rule is noted, for requests, answers and streams alike."""
        self.rules += entries
        if any(e.queues for e in entries):
            self.flagged = True

    def finish(self, status: int, error_code: str | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.latency_ms = (time.perf_counter() - self.started) * 1000.0

    def as_row(self) -> dict[str, Any]:
        """The stored shape (and the shape GET /admin/requests returns)."""
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "endpoint": self.endpoint,
            "team": self.team,
            "key_id": self.key_id,
            "model": self.model,
            "upstream_model": self.upstream_model,
            "provider": self.provider,
            "stream": self.stream,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_micros": self.cost_micros,
            "usage_estimated": self.usage_estimated,
            "latency_ms": round(self.latency_ms, 3),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
            "upstream_ms": None if self.upstream_ms is None else round(self.upstream_ms, 3),
            "status": self.status,
            "error_code": self.error_code,
            "finish_reason": self.finish_reason,
            "flagged": self.flagged,
            "rules": [e.public() for e in self.rules] if self.rules else [],
        }


WriteBatch = Callable[[Sequence[RequestRecord]], Awaitable[None]]


class RecordWriter:
    """A bounded queue of records and the one task that writes them in batches.

    ``submit`` never blocks and never raises. A failed batch is retried with backoff a few times
    and then dropped (counted), so a store that is down for long cannot grow memory without bound.
    """

    def __init__(self, write_batch: WriteBatch, *, max_queue: int = 10000,
                 batch_size: int = 500, max_retries: int = 5, linger_s: float = 0.05,
                 on_drop: Callable[[int], None] | None = None) -> None:
        self._write = write_batch
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(maxsize=max_queue)
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._max_retries = max_retries
        self._on_drop = on_drop
        self._task = Background("record-writer", self._run)
        self.dropped = 0
        self.written = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task.start()

    def submit(self, record: RequestRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._drop(1)

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self._on_drop is not None:
            self._on_drop(n)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if self._linger_s and self._queue.qsize() < self._batch_size:
                # Under load, waiting a moment turns one transaction per request into one per
                # batch: the writer's cost per record drops by an order of magnitude.
                await asyncio.sleep(self._linger_s)
            batch = [first]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_with_retry(batch)
            for _ in batch:
                self._queue.task_done()

    async def _write_with_retry(self, batch: list[RequestRecord]) -> None:
        delay = 0.05
        for attempt in range(self._max_retries + 1):
            try:
                await self._write(batch)
                self.written += len(batch)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == self._max_retries:
                    log.error("dropping %d request records after %d attempts: %s",
                              len(batch), attempt + 1, type(exc).__name__)
                    self._drop(len(batch))
                    return
                log.warning("log store write failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything submitted so far is written (or dropped)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def close(self, timeout_s: float = 10.0) -> None:
        await self.flush(timeout_s)
        await self._task.stop()
        left = self._queue.qsize()
        if left:
            self._drop(left)
