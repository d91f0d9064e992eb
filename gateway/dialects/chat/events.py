"""OpenAI stream chunks (chat and legacy completions): reading, guarding and rendering them.

A chunk is parsed once by the relay; this module says what is in it (output text for metering,
usage, finish reasons), rewrites its texts through the stream guard, and frames chunks as
``data: <json>`` server-sent events. A chunk that was not rewritten is sent as the upstream's own
bytes.

Every text a chunk can carry goes through the guard (see ``answers`` for why): content and
tool-call arguments, and as side texts a refusal, reasoning, an audio transcript and any string
under a delta key the gateway does not know, each in its own window, so a value split across
chunks is seen whole; names and fields outside the delta arrive whole and are checked at once.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.dialects.base import Event, Slot, StreamFilter
from gateway.dialects.chat.answers import ANSWER_KEYS, CHOICE_KEYS, OPAQUE, texts_under
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


#: The window of a choice's content (the stream guard releases it at a stream's end).
CONTENT = "content"
#: Delta keys ``_guard_delta`` reads itself; a string under any other key is a side text.
_DELTA_KNOWN = frozenset({"content", "tool_calls", "function_call", "audio"})
_DELTA_PLAIN = _DELTA_KNOWN | OPAQUE
_TOOL_TEXT = (("function", "arguments"), ("custom", "input"))


async def guard_event(obj: dict[str, Any], guard: StreamFilter) -> bool:
    """Pass every text of the event through the guard, in place: each choice's content, tool
    calls, refusal, reasoning, transcript, and strings under fields the gateway does not know;
    remove what cannot be checked when the guard strips. False when nothing is left to send
    (no text released yet, no finish reason, nothing else)."""
    keep = False
    for choice in obj.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        kept = await _guard_choice(choice, guard)
        if guard.blocked:
            return False
        keep = keep or kept
    await _check_unknown(obj, ANSWER_KEYS, -1, guard)
    return not guard.blocked and (keep or bool(obj.get("usage")))


async def _check_unknown(container: dict[str, Any], known: frozenset[str], index: int,
                         guard: StreamFilter) -> None:
    """Strings under keys the gateway does not know, outside the delta, come whole in each
    event: each is checked at once."""
    if known.issuperset(container):
        return  # nearly every event: one C-level test instead of a loop
    for key in container:
        if key not in known:
            slots: list[Slot] = []
            texts_under(container, key, slots)
            for slot in slots:
                slot.set(await guard.check((index, f"~{key}"), slot.text))


async def _guard_choice(choice: dict[str, Any], guard: StreamFilter) -> bool:
    """One choice through the guard; True when it still has something to send."""
    index = choice.get("index", 0)
    if guard.strips and choice.get("logprobs") is not None:
        choice["logprobs"] = None  # token pieces, bytes, alternatives: not checkable
    await _check_unknown(choice, CHOICE_KEYS, index, guard)
    delta = choice.get("delta")
    holder, key = (delta, "content") if isinstance(delta, dict) else (choice, "text")
    text = holder.get(key)
    out = ""
    if isinstance(text, str) and text:
        if isinstance(delta, dict):
            await _close_side_texts(guard, index, delta)  # the reasoning ends where text starts
        out = await guard.feed((index, CONTENT), text)
    if isinstance(delta, dict) and len(delta) > (key in delta):
        await _guard_delta(guard, index, delta)  # not for the usual {"content": ...} alone
    finished = bool(choice.get("finish_reason"))
    if finished:
        out += await guard.finish((index, CONTENT))
        if isinstance(delta, dict):
            for window in guard.keys(index):
                if window[1] != CONTENT:
                    _place(delta, window[1], await guard.finish(window))
    if guard.blocked:
        return False
    if isinstance(text, str) or out:
        holder[key] = out
    return bool(out) or finished or (isinstance(delta, dict) and any(
        v not in (None, "", [], {}) for k, v in delta.items() if k != "content"))


async def _guard_delta(guard: StreamFilter, index: int, delta: dict[str, Any]) -> None:
    """A delta's texts besides its content, in place; emptied pieces are taken out."""
    if delta.get("tool_calls"):
        await _guard_tool_calls(guard, index, delta)
    fc = delta.get("function_call")
    if isinstance(fc, dict):
        await _guard_spec(guard, index, "function_call", fc, "arguments")
        if not any(fc.values()):
            del delta["function_call"]
    audio = delta.get("audio")
    if isinstance(audio, dict):
        await _guard_audio(guard, index, delta, audio)
    if _DELTA_PLAIN.issuperset(delta):
        return
    for key in [k for k in delta if k not in _DELTA_PLAIN]:
        value = delta[key]
        if isinstance(value, str):
            released = await guard.feed((index, f".{key}"), value, whole=False) if value else ""
            if released:
                delta[key] = released
            else:
                del delta[key]
        elif guard.strips and value not in (None, [], {}):
            # Structured provider fields (thinking blocks, reasoning details) stream their text
            # in pieces the guard cannot window: removed (their text also comes as a string).
            del delta[key]


async def _guard_audio(guard: StreamFilter, index: int, delta: dict[str, Any],
                       audio: dict[str, Any]) -> None:
    """Streamed audio: the speech cannot be checked (removed when the guard strips); its
    transcript goes through a window like a side text."""
    if guard.strips:
        audio.pop("data", None)
    transcript = audio.get("transcript")
    if isinstance(transcript, str) and transcript:
        audio["transcript"] = await guard.feed((index, "audio"), transcript, whole=False)
    if not any(audio.values()):
        del delta["audio"]


async def _guard_spec(guard: StreamFilter, index: int, window: str, spec: dict[str, Any],
                      field: str) -> None:
    """A tool call's function (or custom tool): its arguments (input) stream through a window,
    its name arrives whole and is checked at once."""
    value = spec.get(field)
    if isinstance(value, str) and value:
        spec[field] = await guard.feed((index, window), value)
    name = spec.get("name")
    if isinstance(name, str) and name:
        spec["name"] = await guard.check((index, f"{window}.name"), name)


async def _guard_tool_calls(guard: StreamFilter, index: int, delta: dict[str, Any]) -> None:
    """Tool-call arguments go through the guard like content; calls left empty are dropped."""
    calls = delta.get("tool_calls")
    if not isinstance(calls, list):
        return
    kept = []
    for call in calls:
        if not isinstance(call, dict):
            continue
        empty = True
        for kind, field in _TOOL_TEXT:
            spec = call.get(kind)
            if isinstance(spec, dict):
                await _guard_spec(guard, index, f"tool:{call.get('index', 0)}:{kind}", spec,
                                  field)
                empty = empty and not any(spec.values())
        if empty and set(call) <= {"index", "function", "custom"}:
            continue  # nothing to send yet for this call
        kept.append(call)
    if kept:
        delta["tool_calls"] = kept
    else:
        del delta["tool_calls"]


async def _close_side_texts(guard: StreamFilter, index: int, delta: dict[str, Any]) -> None:
    """Release the held tails of a choice's side texts (reasoning) into this delta."""
    for window in guard.keys(index):
        if window[1].startswith("."):
            _place(delta, window[1], await guard.finish(window))


def _place(delta: dict[str, Any], window: str, tail: str) -> None:
    """Put the released tail of a window back where its text came from."""
    if not tail:
        return
    if window.startswith("."):
        key = window[1:]
        previous = delta.get(key)
        delta[key] = (previous if isinstance(previous, str) else "") + tail
    elif window in ("audio", "function_call"):
        key, field = ("audio", "transcript") if window == "audio" else (window, "arguments")
        holder = delta.get(key)
        if not isinstance(holder, dict):
            holder = delta[key] = {}
        holder[field] = (holder.get(field) or "") + tail
    elif window.startswith("tool:") and not window.endswith(".name"):
        _, t, kind = window.split(":")
        field = dict(_TOOL_TEXT)[kind]
        delta["tool_calls"] = [*(delta.get("tool_calls") or []),
                               {"index": int(t), kind: {field: tail}}]


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
