"""OpenAI answers (chat, legacy completions): their texts, finish reason, and the withheld form."""

from __future__ import annotations

from typing import Any

from gateway.dialects.base import Slot
from gateway.dialects.chat.requests import tool_call_slots


def answer_slots(data: dict[str, Any]) -> list[Slot]:
    """Every text an output rule must see in a non-streamed answer (content, text, tool calls)."""
    slots: list[Slot] = []
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        msg = choice.get("message")
        if isinstance(msg, dict):
            if isinstance(msg.get("content"), str):
                slots.append(Slot(msg, "content"))
            slots += tool_call_slots(msg.get("tool_calls"))
        elif isinstance(choice.get("text"), str):
            slots.append(Slot(choice, "text"))
    return slots


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
    """A blocked answer: empty content, no tool calls, ``finish_reason: content_filter``."""
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        choice["finish_reason"] = "content_filter"
        msg = choice.get("message")
        if isinstance(msg, dict):
            msg["content"] = ""
            msg.pop("tool_calls", None)
        if "text" in choice:
            choice["text"] = ""
