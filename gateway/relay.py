"""Relaying one upstream stream to the client: usage, metering against the hold, and settlement.

Frames are passed on as they arrive (never buffered). Each chunk is parsed once to learn its
text, finish reason and usage. Output is metered against the budget hold *before* a chunk is
sent: a chunk's UTF-8 byte length bounds its token count from above, so the exact (tiktoken)
count is only taken when that bound says the hold might be outgrown. When the hold cannot be
topped up, the stream ends with ``finish_reason: "length"``. ``finish()`` settles the hold and
submits the record exactly once, whatever happened: completion, upstream failure, client gone.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from gateway.errors import GatewayError, UpstreamError, error_code_of
from gateway.providers.base import Usage, parse_usage
from gateway.streaming import DONE, event
from gateway.tokens import count_text

if TYPE_CHECKING:
    from gateway.budget.budgets import Estimate, Hold
    from gateway.guardrails.stream_guard import StreamGuard
    from gateway.records import RequestRecord
    from gateway.services import Services
    from gateway.settings import ModelSettings

log = logging.getLogger("gateway.relay")


class StreamRelay:
    def __init__(self, services: Services, model: ModelSettings, hold: Hold, record: RequestRecord,
                 estimate: Estimate, first: list[bytes],
                 upstream: AsyncGenerator[list[bytes], None], *,
                 client_wants_usage: bool, upstream_started: float,
                 guard: StreamGuard | None = None) -> None:
        self._s = services
        self._model = model
        self._hold = hold
        self._record = record
        self._estimate = estimate
        self._first = first
        self._upstream = upstream
        self._wants_usage = client_wants_usage
        self._upstream_started = upstream_started
        self._usage: Usage | None = None
        self._counted_tokens = 0  # exact count of text already metered
        self._pending: list[str] = []  # text received but not yet counted exactly
        self._pending_bytes = 0
        self._affordable = (-1, 0)  # (hold amount, completion tokens that amount covers)
        self._last: dict[str, Any] = {}
        self._completed = False
        self._finished = False
        self._error: GatewayError | None = None
        self._truncated = False
        self._guard = guard

    # -- frames ---------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[bytes]:
        """The client's SSE bytes: one piece per batch of upstream events (see ``Provider``)."""
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
                        yield self._final_frame("content_filter")
                    elif tail:
                        yield self._text_frame(tail)
            self._completed = True
            yield DONE
        except GatewayError as exc:
            self._error = exc
            yield event(exc.body_bytes())
            yield DONE
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
                frames.append(self._final_frame("length"))
                ended = True
                break
            if self._guard is not None and self._guard.blocked:
                frames.append(self._final_frame("content_filter"))
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
        if obj.get("error"):
            err = obj["error"]
            msg = err.get("message") if isinstance(err, dict) else str(err)
            raise UpstreamError(f"The upstream failed mid-stream: {msg}")
        self._last = obj
        usage = parse_usage(obj.get("usage"))
        choices = obj.get("choices") or ()
        if usage is not None:
            self._usage = usage
            if not choices and not self._wants_usage:
                return None  # we asked for the usage chunk; the client did not
        for choice in choices:
            self._take_choice(choice)
        if self._pending_bytes and not await self._meter():
            self._truncated = True
            return None
        if self._guard is not None and choices:
            return await self._guarded(obj, choices)
        return event(payload)

    async def _guarded(self, obj: dict[str, Any], choices: Any) -> bytes | None:
        """Pass each choice's text through the stream guard; None when nothing is left to send."""
        assert self._guard is not None
        keep = False
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta")
            holder, key = (delta, "content") if isinstance(delta, dict) else (choice, "text")
            text = holder.get(key)
            out = (await self._guard.feed((index, -1), text)
                   if isinstance(text, str) and text else "")
            tools = await self._guard_tool_calls(index, delta)
            if choice.get("finish_reason"):
                out += await self._guard.finish((index, -1))
                tools = await self._finish_tool_calls(index, delta) or tools
            if self._guard.blocked:
                return None
            if isinstance(text, str) or out:
                holder[key] = out
            keep = keep or bool(out) or tools or bool(choice.get("finish_reason")) or (
                isinstance(delta, dict) and any(k not in ("content", "tool_calls")
                                                for k in delta))
        if not keep and not obj.get("usage"):
            return None
        return event(orjson.dumps(obj))

    async def _guard_tool_calls(self, index: int, delta: Any) -> bool:
        """Tool-call arguments go through the guard like content; True if any call remains."""
        assert self._guard is not None
        calls = delta.get("tool_calls") if isinstance(delta, dict) else None
        if not isinstance(calls, list):
            return False
        kept = []
        for call in calls:
            fn = call.get("function") if isinstance(call, dict) else None
            args = fn.get("arguments") if isinstance(fn, dict) else None
            if isinstance(fn, dict) and isinstance(args, str) and args:
                fn["arguments"] = await self._guard.feed((index, call.get("index", 0)), args)
                if not fn["arguments"] and set(call) <= {"index", "function"} and set(fn) == {
                        "arguments"}:
                    continue  # nothing to send yet for this call
            kept.append(call)
        delta["tool_calls"] = kept
        if not kept:
            del delta["tool_calls"]
        return bool(kept)

    async def _finish_tool_calls(self, index: int, delta: Any) -> bool:
        assert self._guard is not None
        tails = []
        for key in self._guard.tool_keys(index):
            tail = await self._guard.finish(key)
            if tail:
                tails.append({"index": key[1], "function": {"arguments": tail}})
        if tails and isinstance(delta, dict):
            delta["tool_calls"] = [*(delta.get("tool_calls") or []), *tails]
        return bool(tails)

    def _take_choice(self, choice: Any) -> None:
        if not isinstance(choice, dict):
            return
        if choice.get("finish_reason"):
            self._record.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            self._add_text(text)
        if isinstance(delta, dict):
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    self._add_text(fn["arguments"])

    def _add_text(self, text: str) -> None:
        self._pending.append(text)
        self._pending_bytes += len(text.encode())

    def _count_pending(self) -> None:
        if self._pending:
            self._counted_tokens += count_text("".join(self._pending), self._model.upstream_model)
            self._pending.clear()
            self._pending_bytes = 0

    async def _meter(self) -> bool:
        """Keep the hold ahead of the output; False when the budget cannot cover this chunk."""
        hold = self._hold
        prompt = self._estimate.prompt_tokens
        bound = self._counted_tokens + self._pending_bytes
        if self._affordable[0] != hold.amount:  # the hold grew: what it covers, priced once
            self._affordable = (hold.amount, self._s.pricing.affordable_output(
                self._model, prompt, hold.amount))
        if (bound <= self._affordable[1] and prompt + bound <= hold.tokens
                and self._pending_bytes < 4096):
            return True
        self._count_pending()
        need_usd = self._cost(self._counted_tokens) - hold.amount
        need_tok = prompt + self._counted_tokens - hold.tokens
        if need_usd <= 0 and need_tok <= 0:
            return True
        # Grow by a quarter of the original output bound at least, so a long stream asks rarely;
        # if that much is not left, take exactly what this chunk needs.
        step_tok = max(need_tok, 256, self._estimate.max_output_tokens // 4)
        step_usd = max(need_usd, self._s.pricing.output_cost(self._model, step_tok))
        if await hold.top_up(step_usd, step_tok):
            return True
        return await hold.top_up(max(0, need_usd), max(0, need_tok))

    def _cost(self, completion_tokens: int) -> int:
        return self._s.pricing.cost(self._model,
                                    Usage(self._estimate.prompt_tokens, completion_tokens))

    def _final_frame(self, reason: str) -> bytes:
        """The last chunk of a stream the gateway ends itself (budget spent, content blocked)."""
        self._record.finish_reason = reason
        return self._frame({}, "", reason)

    def _text_frame(self, text: str) -> bytes:
        return self._frame({"content": text}, text, None)

    def _frame(self, delta: dict[str, Any], text: str, reason: str | None) -> bytes:
        last = self._last
        chat = last.get("object") != "text_completion"
        choice: dict[str, Any] = ({"index": 0, "delta": delta, "finish_reason": reason} if chat
                                  else {"index": 0, "text": text, "finish_reason": reason})
        return event(orjson.dumps({"id": last.get("id", ""), "object": last.get(
            "object", "chat.completion.chunk"), "created": last.get("created", int(time.time())),
            "model": last.get("model", self._model.upstream_model), "choices": [choice]}))

    # -- settlement -----------------------------------------------------------------------

    async def finish(self, disconnected: bool) -> None:
        if self._finished:
            return
        self._finished = True
        rec = self._record
        try:
            if self._usage is None:
                # No usage from the upstream (or the stream broke first): count what was served.
                self._count_pending()
                self._usage = Usage(self._estimate.prompt_tokens, self._counted_tokens)
                rec.usage_estimated = True
            cost = self._s.pricing.cost(self._model, self._usage)
            rec.prompt_tokens = self._usage.prompt_tokens
            rec.completion_tokens = self._usage.completion_tokens
            rec.cost_micros = cost
            rec.upstream_ms = (time.perf_counter() - self._upstream_started) * 1e3
            await self._hold.settle(cost, self._usage.total_tokens)
        except Exception:  # settlement must never take the record down with it
            log.exception("settling a stream failed")
            with contextlib.suppress(Exception):
                await self._hold.release()
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
        self._s.submit(rec)
