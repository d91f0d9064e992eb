"""The chat dialect is the one place that knows where text lives in OpenAI bodies, answers and
chunks: what it finds, what it rewrites, and what it renders."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gateway.dialects import INBOUND
from gateway.dialects.chat.api import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.errors import InvalidRequest, UpstreamError
from gateway.providers.base import Usage

CHAT_BODY: dict[str, Any] = {
    "model": "m", "stream": True, "max_tokens": 7, "n": 2,
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "part"},
                                     {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "result"},
    ]}


def test_every_inbound_path_has_a_dialect_named_like_its_endpoint() -> None:
    assert {p: d.name for p, d in INBOUND.items()} == {
        "/chat/completions": "chat", "/completions": "completions", "/embeddings": "embeddings"}


def test_parse_builds_the_call_and_the_providers_copy() -> None:
    call = CHAT.parse(CHAT_BODY)
    assert (call.endpoint, call.model, call.stream, call.max_output_tokens, call.choices) == (
        "chat", "m", True, 7, 2)
    assert call.wire is CHAT and not call.wants_usage
    assert call.body["stream_options"] == {"include_usage": True}  # billing needs the usage
    assert "stream_options" not in CHAT_BODY  # the client's body is not changed
    assert EMBEDDINGS.parse({"model": "e", "input": "x"}).max_output_tokens == 0
    with pytest.raises(InvalidRequest):
        CHAT.parse({"model": "m", "messages": []})


def test_input_slots_cover_every_role_part_and_tool_call() -> None:
    call = CHAT.parse(CHAT_BODY)
    slots = CHAT.input_slots(call)
    assert [s.text for s in slots] == ["sys", "part", "{}", "result"]
    slots[0].set("SYS")
    assert call.body["messages"][0]["content"] == "SYS"
    legacy = COMPLETIONS.parse({"model": "m", "prompt": ["a", [1, 2], "b"]})
    assert [s.text for s in COMPLETIONS.input_slots(legacy)] == ["a", "b"]
    assert COMPLETIONS.prompt_tokens(legacy, "gpt-4o") == 1 + 2 + 1


def test_answers_slots_and_withholding() -> None:
    data = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "hi", "tool_calls": [
            {"function": {"name": "f", "arguments": "{\"a\": 1}"}}]}}]}
    # The answer's texts first (whole-answer checks judge them), then side texts: the name.
    assert [(s.text, s.whole) for s in CHAT.answer_slots(data)] == [
        ("hi", True), ("{\"a\": 1}", True), ("f", False)]
    assert CHAT.answer_texts(data) == ["hi"] and CHAT.finish_reason(data) == "stop"
    CHAT.withhold(data)
    assert data["choices"][0] == {"index": 0, "finish_reason": "content_filter",
                                  "message": {"role": "assistant", "content": ""}}
    assert not EMBEDDINGS.answers_text


def test_stream_events_are_read_and_rendered() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up",
             "choices": [{"index": 0, "delta": {"content": "he", "tool_calls": [
                 {"index": 0, "function": {"arguments": "{}"}}]}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    assert CHAT.read_event(chunk) == (["he", "{}"], Usage(3, 2), "stop", True)
    with pytest.raises(UpstreamError):
        CHAT.read_event({"error": {"message": "boom"}})
    out = CHAT.stream(CHAT.parse(CHAT_BODY), "up")
    assert out.event(chunk, b"{}") == b"data: {}\n\n"
    end = orjson.loads(out.end(chunk, "length")[len(b"data: "):])
    assert (end["id"], end["model"], end["choices"]) == (
        "c", "up", [{"index": 0, "delta": {}, "finish_reason": "length"}])
    assert out.done() == b"data: [DONE]\n\n"


def test_side_texts_unknown_fields_and_what_cannot_be_checked() -> None:
    data = {"provider_note": "p", "choices": [{"index": 0, "finish_reason": "stop", "logprobs": {
        "content": [{"token": "hi", "bytes": [104, 105], "logprob": 0.0}]}, "message": {
        "role": "assistant", "content": "hi", "refusal": "r", "reasoning_content": "rc",
        "audio": {"id": "a1", "data": "UklGR", "transcript": "t", "expires_at": 1},
        "thinking_blocks": [{"type": "thinking", "thinking": "th", "signature": "sig"}]}}]}
    assert [(s.text, s.whole) for s in CHAT.answer_slots(data)] == [
        ("hi", True), ("r", False), ("rc", False), ("t", False), ("th", False), ("p", False)]
    CHAT.strip_unchecked(data)
    choice: Any = data["choices"][0]
    assert choice["logprobs"] is None and "data" not in choice["message"]["audio"]
    assert CHAT.removed_fields({"logprobs": True, "modalities": ["text", "audio"]}) == (
        "logprobs", "audio.data")
    assert COMPLETIONS.removed_fields({"logprobs": 0}) == ("logprobs",)
    assert CHAT.removed_fields({"logprobs": False}) == ()
    CHAT.withhold(data)
    assert choice == {"index": 0, "finish_reason": "content_filter", "logprobs": None,
                      "message": {"role": "assistant", "content": ""}}


class _Upper:
    """A stream filter that releases text upper-cased, at once."""

    blocked = False
    strips = True

    async def feed(self, key: tuple[int, str], text: str, *, whole: bool = True) -> str:
        return text.upper()

    async def check(self, key: tuple[int, str], text: str) -> str:
        return text.upper()

    async def finish(self, key: tuple[int, str]) -> str:
        return ""

    def keys(self, index: int) -> list[tuple[int, str]]:
        return []


def test_guarding_an_event_rewrites_its_texts_in_place() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "abc"}, "finish_reason": None}]}
    assert asyncio.run(CHAT.guard_event(chunk, _Upper()))
    assert chunk["choices"][0]["delta"]["content"] == "ABC"


def test_guarding_an_event_reaches_every_text_and_strips_the_rest() -> None:
    chunk: dict[str, Any] = {"choices": [{"index": 0, "logprobs": {"content": []}, "delta": {
        "refusal": "no", "reasoning_content": "why", "audio": {"data": "UklGR", "transcript": "t"},
        "function_call": {"name": "f", "arguments": "{}"},
        "reasoning_details": [{"type": "reasoning.text", "text": "x"}]}, "finish_reason": None}]}
    assert asyncio.run(CHAT.guard_event(chunk, _Upper()))
    assert chunk["choices"][0] == {"index": 0, "logprobs": None, "delta": {
        "refusal": "NO", "reasoning_content": "WHY", "audio": {"transcript": "T"},
        "function_call": {"name": "F", "arguments": "{}"}}, "finish_reason": None}
