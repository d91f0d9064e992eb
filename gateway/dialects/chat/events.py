"""OpenAI stream chunks (chat and legacy completions): reading, guarding and rendering them.

A chunk is parsed once by the relay; this module says what is in it (output text for metering,
usage, finish reasons), rewrites its texts through the stream guard, and frames chunks as
``data: <json>`` server-sent events. A chunk that was not rewritten is sent as the upstream's own
bytes.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.dialects.base import Event, StreamFilter
from gateway.errors import GatewayError, UpstreamError
from gateway.providers.base import parse_usage

DONE = b"data: [DONE]\n\n"


def sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def read_event(obj: dict[str, Any]) -> Event:
    """Output text (content and tool-call arguments), usage and finish reason of one chunk."""
    if obj.get("error"):
        err = obj["error"]
        msg = err.get("message") if isinstance(err, dict) else str(err)
        raise UpstreamError(f"The upstream failed mid-stream: {msg}")
    choices = obj.get("choices") or ()
    texts: list[str] = []
    finish: str | None = None
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason"):
            finish = str(choice["finish_reason"])
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            texts.append(text)
        if isinstance(delta, dict) and delta.get("tool_calls"):
            _tool_texts(delta["tool_calls"], texts)
    return texts, parse_usage(obj.get("usage")), finish, bool(choices)


def _tool_texts(calls: Any, out: list[str]) -> None:
    """The argument pieces of a delta's tool calls (metered like content)."""
    for call in calls if isinstance(calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            out.append(fn["arguments"])


async def guard_event(obj: dict[str, Any], guard: StreamFilter) -> bool:
    """Pass each choice's text and tool-call arguments through the guard, in place; False when
    nothing is left to send (no text released yet, no finish reason, nothing else)."""
    keep = False
    for choice in obj.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        kept = await _guard_choice(choice, guard)
        if guard.blocked:
            return False
        keep = keep or kept
    return keep or bool(obj.get("usage"))


async def _guard_choice(choice: dict[str, Any], guard: StreamFilter) -> bool:
    """One choice through the guard; True when it still has something to send."""
    index = choice.get("index", 0)
    delta = choice.get("delta")
    holder, key = (delta, "content") if isinstance(delta, dict) else (choice, "text")
    text = holder.get(key)
    out = await guard.feed((index, -1), text) if isinstance(text, str) and text else ""
    tools = await _guard_tool_calls(guard, index, delta)
    finished = bool(choice.get("finish_reason"))
    if finished:
        out += await guard.finish((index, -1))
        tools = await _finish_tool_calls(guard, index, delta) or tools
    if guard.blocked:
        return False
    if isinstance(text, str) or out:
        holder[key] = out
    return bool(out) or tools or finished or (
        isinstance(delta, dict) and any(k not in ("content", "tool_calls") for k in delta))


async def _guard_tool_calls(guard: StreamFilter, index: int, delta: Any) -> bool:
    """Tool-call arguments go through the guard like content; True if any call remains."""
    calls = delta.get("tool_calls") if isinstance(delta, dict) else None
    if not isinstance(calls, list):
        return False
    kept = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        args = fn.get("arguments") if isinstance(fn, dict) else None
        if isinstance(fn, dict) and isinstance(args, str) and args:
            fn["arguments"] = await guard.feed((index, call.get("index", 0)), args)
            if not fn["arguments"] and set(call) <= {"index", "function"} and set(fn) == {
                    "arguments"}:
                continue  # nothing to send yet for this call
        kept.append(call)
    delta["tool_calls"] = kept
    if not kept:
        del delta["tool_calls"]
    return bool(kept)


async def _finish_tool_calls(guard: StreamFilter, index: int, delta: Any) -> bool:
    tails = []
    for key in guard.tool_keys(index):
        tail = await guard.finish(key)
        if tail:
            tails.append({"index": key[1], "function": {"arguments": tail}})
    if tails and isinstance(delta, dict):
        delta["tool_calls"] = [*(delta.get("tool_calls") or []), *tails]
    return bool(tails)


class ChunkStream:
    """The client's frames of one chat or completions stream: chunks as they are, and the
    chunks the gateway adds itself, shaped like the last chunk read (its id, model, created)."""

    def __init__(self, chat: bool, upstream_model: str) -> None:
        self._chat = chat
        self._model = upstream_model

    def event(self, obj: dict[str, Any], raw: bytes | None) -> bytes:
        # Per chunk: framed here, without another call.
        return b"data: " + (raw if raw is not None else orjson.dumps(obj)) + b"\n\n"

    def text(self, last: dict[str, Any], text: str) -> bytes:
        return self._frame(last, {"content": text}, text, None)

    def end(self, last: dict[str, Any], reason: str) -> bytes:
        return self._frame(last, {}, "", reason)

    def error(self, exc: GatewayError) -> bytes:
        return sse(exc.body_bytes()) + DONE

    def done(self) -> bytes:
        return DONE

    def _frame(self, last: dict[str, Any], delta: dict[str, Any], text: str,
               reason: str | None) -> bytes:
        choice: dict[str, Any] = ({"index": 0, "delta": delta, "finish_reason": reason}
                                  if self._chat else
                                  {"index": 0, "text": text, "finish_reason": reason})
        default_object = "chat.completion.chunk" if self._chat else "text_completion"
        return sse(orjson.dumps({"id": last.get("id", ""), "object": last.get(
            "object", default_object), "created": last.get("created", int(time.time())),
            "model": last.get("model", self._model), "choices": [choice]}))
