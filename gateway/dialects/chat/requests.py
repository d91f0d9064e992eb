"""OpenAI request bodies: validation, the provider's copy, the prompt's texts and token count.

Validation is deliberately shallow: the gateway checks what it must understand (model, messages,
stream, token bounds) and passes every other field to the provider untouched, so new OpenAI
parameters work without a gateway release. Hand-written checks instead of a pydantic model keep
this off the profile of the hot path.
"""

from __future__ import annotations

from typing import Any

from gateway.dialects.base import Slot
from gateway.errors import InvalidRequest
from gateway.tokens import count_chat, count_text

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


# --- validation ----------------------------------------------------------------------------------


def _require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    return model


def _check_common(body: dict[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    for field in ("max_tokens", "max_completion_tokens", "n"):
        v = body.get(field)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise InvalidRequest(f"'{field}' must be a positive integer.", param=field)
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")


def validate_chat(body: dict[str, Any]) -> str:
    """Check a chat completions body; returns the requested model name."""
    model = _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array.",
                             param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidRequest(f"messages[{i}] must be an object.", param=f"messages[{i}]")
        if m.get("role") not in _ROLES:
            raise InvalidRequest(f"messages[{i}].role must be one of {sorted(_ROLES)}.",
                                 param=f"messages[{i}].role")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(f"messages[{i}].content must be a string or an array.",
                                 param=f"messages[{i}].content")
    _check_common(body)
    return model


def validate_completions(body: dict[str, Any]) -> str:
    model = _require_model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str | list):
        raise InvalidRequest("'prompt' is required and must be a string or an array.",
                             param="prompt")
    _check_common(body)
    return model


def validate_embeddings(body: dict[str, Any]) -> str:
    model = _require_model(body)
    value = body.get("input")
    if not (isinstance(value, str) and value) and not (isinstance(value, list) and value):
        raise InvalidRequest("'input' is required: a non-empty string or array.", param="input")
    if body.get("stream"):
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
    return model


# --- the provider's copy -----------------------------------------------------------------------


def upstream_body(body: dict[str, Any], stream: bool) -> tuple[dict[str, Any], bool]:
    """The body the provider gets, and whether the client itself asked for a usage chunk.

    A shallow copy: the pipeline names the upstream model in it. A stream always asks for the
    usage chunk, because billing needs it; the relay strips it when the client did not ask.
    """
    out = dict(body)
    wants_usage = False
    if stream:
        opts = body.get("stream_options")
        wants_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        out["stream_options"] = {**(opts if isinstance(opts, dict) else {}),
                                 "include_usage": True}
    return out, wants_usage


def max_output(body: dict[str, Any]) -> int | None:
    """The request's own output bound, if it sets one."""
    for field in ("max_completion_tokens", "max_tokens"):
        v = body.get(field)
        if isinstance(v, int) and v > 0:
            return v
    return None


def choices(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 1 else 1


# --- where the texts are -------------------------------------------------------------------------


def message_slots(messages: Any) -> list[Slot]:
    """Every text of chat messages: all roles, text parts, tool-call arguments and results."""
    slots: list[Slot] = []
    for m in messages if isinstance(messages, list) else ():
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            slots.append(Slot(m, "content"))
        elif isinstance(content, list):
            slots += [Slot(p, "text") for p in content
                      if isinstance(p, dict) and isinstance(p.get("text"), str)]
        slots += tool_call_slots(m.get("tool_calls"))
    return slots


def tool_call_slots(calls: Any) -> list[Slot]:
    """The arguments of each tool call (a message's or an answer's)."""
    slots: list[Slot] = []
    for call in calls or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            slots.append(Slot(fn, "arguments"))
    return slots


def value_slots(body: dict[str, Any], key: str) -> list[Slot]:
    """A legacy prompt or an embedding input: one string or a list of strings (token-id lists
    hold no text)."""
    value = body.get(key)
    if isinstance(value, str):
        return [Slot(body, key)]
    if isinstance(value, list):
        return [Slot(value, i) for i, v in enumerate(value) if isinstance(v, str)]
    return []


# --- counting the prompt -----------------------------------------------------------------------


def message_texts(messages: list[Any]) -> list[str]:
    """Every piece of text in chat messages as OpenAI counts it: content strings, text parts,
    and each tool call's name and arguments."""
    out: list[str] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p["text"] for p in content
                    if isinstance(p, dict) and isinstance(p.get("text"), str)]
        calls = m.get("tool_calls")
        if calls:
            _call_texts(calls, out)
    return out


def _call_texts(calls: Any, out: list[str]) -> None:
    for call in calls if isinstance(calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            out.append(str(fn.get("name") or ""))
            out.append(str(fn.get("arguments") or ""))


def count_messages(messages: list[Any], model: str) -> int:
    """The prompt tokens of chat messages, as OpenAI counts them."""
    return count_chat(message_texts(messages), len(messages), model)


def count_values(value: Any, model: str) -> int:
    """A legacy prompt or an embedding input: text, token ids, or lists of either."""
    if isinstance(value, str):
        return count_text(value, model)
    if isinstance(value, list):
        total = 0
        for item in value:
            if isinstance(item, str):
                total += count_text(item, model)
            elif isinstance(item, int):
                total += 1  # a token id
            elif isinstance(item, list):
                total += len(item)  # a list of token ids
        return total
    return 0
