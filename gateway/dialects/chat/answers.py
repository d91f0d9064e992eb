"""OpenAI answers (chat, legacy completions): their texts, finish reason, and the withheld form.

Output rules must see every text a model generated, not only the content: a refusal, reasoning
(``reasoning_content``, ``reasoning``, thinking blocks: each server names it its own way),
an audio transcript, tool-call arguments and names, in every choice. So besides the fields it
knows, ``answer_slots`` reads every string under a key it does not know as text: a new
provider field is checked rather than passed on unread. What cannot be checked with the text,
token log-probabilities (token pieces, their bytes, the alternatives the model did not pick) and
audio, is taken out by ``strip_unchecked`` when a policy rewrites answers, and the client is
told so in ``x-gateway-removed-fields`` (``removed_fields``).
"""

from __future__ import annotations

from typing import Any

from gateway.dialects.base import Slot

#: Keys whose values are ids, kinds, numbers and opaque tokens, never generated text: a string
#: under one of these is not read as text (``data`` is audio or encrypted reasoning).
OPAQUE = frozenset({"id", "type", "index", "role", "object", "created", "signature", "format",
                    "data", "expires_at", "encrypted_content", "tool_call_id"})
#: The answer's own keys that hold no generated text (or that ``answer_slots`` reads itself).
ANSWER_KEYS = frozenset({"id", "object", "created", "model", "system_fingerprint", "service_tier",
                  "usage", "choices", "obfuscation"})
CHOICE_KEYS = frozenset({"index", "message", "delta", "text", "finish_reason", "logprobs"})
#: Fields announced in ``x-gateway-removed-fields`` when the request asked for them.
LOGPROBS = "logprobs"
AUDIO_DATA = "audio.data"


def texts_under(container: Any, key: Any, out: list[Slot]) -> None:
    """Every string in ``container[key]``, however deep, as a side text (no whole-answer
    checks): skips the keys in ``OPAQUE``."""
    value = container[key]
    if isinstance(value, str):
        out.append(Slot(container, key, whole=False))
    elif isinstance(value, dict):
        for k in value:
            if k not in OPAQUE:
                texts_under(value, k, out)
    elif isinstance(value, list):
        for i in range(len(value)):
            texts_under(value, i, out)


def tool_slots(calls: Any, slots: list[Slot], side: list[Slot]) -> None:
    """A tool call's arguments (a function's) or input (a custom tool's) are answer text; its
    name and anything else is a side text."""
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        for kind, field in (("function", "arguments"), ("custom", "input")):
            spec = call.get(kind)
            if not isinstance(spec, dict):
                continue
            for k, v in spec.items():
                if k == field and isinstance(v, str):
                    slots.append(Slot(spec, k))
                elif k not in OPAQUE:
                    texts_under(spec, k, side)


def answer_slots(data: dict[str, Any]) -> list[Slot]:
    """Every text an output rule must see in a non-streamed answer: each choice's content (or
    legacy text) and tool-call arguments first, then its side texts, then unknown fields."""
    slots: list[Slot] = []
    side: list[Slot] = []
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        msg = choice.get("message")
        if isinstance(msg, dict):
            _message_slots(msg, slots, side)
        elif isinstance(choice.get("text"), str):
            slots.append(Slot(choice, "text"))
        for key in choice:
            if key not in CHOICE_KEYS:
                texts_under(choice, key, side)
    for key in data:
        if key not in ANSWER_KEYS:
            texts_under(data, key, side)
    return slots + side


def _message_slots(msg: dict[str, Any], slots: list[Slot], side: list[Slot]) -> None:
    for key, value in msg.items():
        if key == "content" and isinstance(value, str):
            slots.append(Slot(msg, key))
        elif key in ("tool_calls", "function_call"):
            tool_slots(value if key == "tool_calls" else [{"function": value}], slots, side)
        elif key not in OPAQUE:
            texts_under(msg, key, side)


def answer_texts(data: dict[str, Any]) -> list[str]:
    """The content of each choice (a message's, or a legacy completion's text)."""
    out: list[str] = []
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if isinstance(text, str):
            out.append(text)
    return out


def finish_reason(data: dict[str, Any]) -> str | None:
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason: str | None = choices[0].get("finish_reason")
        return reason
    return None


def withhold(data: dict[str, Any]) -> None:
    """A blocked answer: empty content and nothing else generated (no tool calls, refusal,
    reasoning, audio or logprobs), ``finish_reason: content_filter``."""
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        choice["finish_reason"] = "content_filter"
        msg = choice.get("message")
        if isinstance(msg, dict):
            choice["message"] = {"role": msg.get("role", "assistant"), "content": ""}
        if "text" in choice:
            choice["text"] = ""
        if choice.get("logprobs") is not None:
            choice["logprobs"] = None


def strip_unchecked(data: dict[str, Any]) -> None:
    """Take out what output rules cannot check with the text: each choice's logprobs (token
    pieces, bytes, alternatives) and a message's audio (the transcript stays, checked)."""
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if choice.get("logprobs") is not None:
            choice["logprobs"] = None
        msg = choice.get("message")
        audio = msg.get("audio") if isinstance(msg, dict) else None
        if isinstance(audio, dict):
            audio.pop("data", None)


def removed_fields(body: dict[str, Any]) -> tuple[str, ...]:
    """What the request asked for that ``strip_unchecked`` (or the stream guard) takes out."""
    out: list[str] = []
    logprobs = body.get("logprobs")
    if (logprobs is not None and logprobs is not False) or body.get("top_logprobs"):
        out.append(LOGPROBS)  # chat: true; legacy completions: a count, 0 included
    modalities = body.get("modalities")
    if body.get("audio") or (isinstance(modalities, list) and "audio" in modalities):
        out.append(AUDIO_DATA)
    return tuple(out)
