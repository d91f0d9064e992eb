"""Relaying one upstream stream to the client: metering, guarding, and settlement at the end.

Frames are passed on as they arrive (never buffered). Each event is parsed once; its wire format
says what it carries (output text, usage, finish reason: ``Wire.read_event``), the meter keeps
the budget hold ahead of the output before the event is sent, the stream guard (if the policy
has output rules or masks) rewrites its texts, and the dialect renders it for the client. When
the hold cannot grow, the stream ends with ``finish_reason: "length"``; when the guard blocks,
with ``content_filter``. ``finish()`` settles the hold and submits the record exactly once,
whatever happened: completion, upstream failure, client gone.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import orjson

from gateway.budget.meter import StreamMeter
from gateway.dialects.base import Call, StreamRenderer
from gateway.errors import GatewayError, UpstreamError, error_code_of
from gateway.guardrails.stream_guard import StreamGuard
from gateway.providers.base import Usage
from gateway.records import RequestRecord

log = logging.getLogger("gateway.relay")


class StreamRelay:
    """One stream: the upstream's batches of events in, the client's frames out (``frames``),
    then ``finish``. It owns the request's hold (through its meter) and record from the moment
    the pipeline hands the stream over."""

    def __init__(self, call: Call, renderer: StreamRenderer, first: list[bytes],
                 upstream: AsyncGenerator[list[bytes], None], meter: StreamMeter,
                 record: RequestRecord, submit: Callable[[RequestRecord], None], *,
                 guard: StreamGuard | None, upstream_started: float) -> None:
        self._wire = call.wire
        self._read_event = call.wire.read_event  # per chunk: bound once
        self._wants_usage = call.wants_usage
        self._out = renderer
        self._render = renderer.event
        self._last: dict[str, Any] = {}  # the last event read: the gateway's own events copy it
        self._first = first
        self._upstream = upstream
        self._meter = meter
        self._record = record
        self._submit = submit
        self._guard = guard
        self._upstream_started = upstream_started
        self._usage: Usage | None = None
        self._completed = False
        self._finished = False
        self._error: GatewayError | None = None
        self._truncated = False

    # -- frames ---------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[bytes]:
        """The client's bytes: one piece per batch of upstream events (see ``Provider``)."""
        # The first event goes out on its own (time to first byte), the rest of its batch next.
        queue = [self._first[:1], self._first[1:]] if len(self._first) > 1 else [self._first]
        try:
            batch: list[bytes] | None = queue.pop(0)
            while batch is not None:
                out, ended, failure = await self._process_batch(batch)
                if out:
                    if self._record.ttft_ms is None:
                        self._record.ttft_ms = (time.perf_counter() - self._record.started) * 1e3
                    yield out
                if failure is not None:
                    raise failure  # after the events before it were sent
                if ended:
                    break
                batch = queue.pop(0) if queue else await anext(self._upstream, None)
            else:
                if self._guard is not None:
                    tail = await self._guard.finish_all()
                    if self._guard.blocked:
                        yield self._end("content_filter")
                    elif tail:
                        yield self._out.text(self._last, tail)
            self._completed = True
            yield self._out.done()
        except GatewayError as exc:
            self._error = exc
            yield self._out.error(exc)
        finally:
            await self._upstream.aclose()

    async def _process_batch(self, batch: list[bytes]
                             ) -> tuple[bytes, bool, GatewayError | None]:
        """The frames of these events, each metered (and guarded) before it is added; True
        when the gateway ends the stream here (budget spent, content blocked); the error of a
        bad event, which ends the batch (the events before it still go out)."""
        frames = []
        ended = False
        failure: GatewayError | None = None
        for payload in batch:
            try:
                out = await self._process(payload)
            except GatewayError as exc:
                failure = exc
                break
            if self._truncated:
                frames.append(self._end("length"))
                ended = True
                break
            if self._guard is not None and self._guard.blocked:
                frames.append(self._end("content_filter"))
                ended = True
                break
            if out is not None:
                frames.append(out)
        return (frames[0] if len(frames) == 1 else b"".join(frames)), ended, failure

    async def _process(self, payload: bytes) -> bytes | None:
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError("The upstream sent an event that is not valid JSON.") from None
        if not isinstance(obj, dict):
            raise UpstreamError("The upstream sent an event that is not a JSON object.")
        texts, usage, finish_reason, has_content = self._read_event(obj)
        self._last = obj
        if usage is not None:
            self._usage = usage
            if not has_content and not self._wants_usage:
                return None  # we asked for the usage event; the client did not
        if finish_reason is not None:
            self._record.finish_reason = finish_reason
        meter = self._meter
        if texts:
            meter.add(texts)
        if meter.pending_bytes and not await meter.covers():
            self._truncated = True
            return None
        if self._guard is not None and has_content:
            if not await self._wire.guard_event(obj, self._guard):
                return None
            return self._render(obj, None)
        return self._render(obj, payload)

    def _end(self, reason: str) -> bytes:
        """The last event of a stream the gateway ends itself (budget spent, content blocked)."""
        self._record.finish_reason = reason
        return self._out.end(self._last, reason)

    # -- settlement -----------------------------------------------------------------------

    async def finish(self, disconnected: bool) -> None:
        """Settle the hold at what was served, and submit the record: exactly once."""
        if self._finished:
            return
        self._finished = True
        rec = self._record
        hold = self._meter.hold
        try:
            usage = self._usage
            if usage is None:
                # No usage from the upstream (or the stream broke first): count what was served.
                usage = self._meter.served()
                rec.usage_estimated = True
            cost = self._meter.cost(usage)
            rec.prompt_tokens = usage.prompt_tokens
            rec.completion_tokens = usage.completion_tokens
            rec.cost_micros = cost
            rec.upstream_ms = (time.perf_counter() - self._upstream_started) * 1e3
            await hold.settle(cost, usage.total_tokens)
        except Exception:  # settlement must never take the record down with it
            log.exception("settling a stream failed")
            with contextlib.suppress(Exception):
                await hold.release()
        if self._guard is not None and rec.flagged:
            rec.review_response = self._guard.stored_response()
        if self._truncated:
            rec.finish(200, "budget_exceeded")
        elif self._error is not None:
            rec.finish(self._error.http_status(), error_code_of(self._error))
        elif disconnected and not self._completed:
            rec.finish(499, "client_disconnected")
        elif not self._completed:  # cancelled by the server itself (shutdown past its grace)
            rec.finish(503, "stream_interrupted")
        else:
            rec.finish(200)
        self._submit(rec)
