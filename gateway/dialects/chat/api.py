"""The OpenAI dialects: chat completions, legacy completions and embeddings.

They share one wire format (``OpenAIWire``): the gateway's providers speak it, so these dialects
pass bodies, answers and chunks through unchanged unless a guardrail rewrote them. A dialect that
translates to chat (Messages, Responses) uses ``CHAT`` as its call's wire format.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.dialects.base import Call, Event, Slot, StreamFilter
from gateway.dialects.chat import answers, events, requests
from gateway.errors import GatewayError
from gateway.providers.base import Completion


class OpenAIWire:
    """Where texts, usage and finish reasons are in OpenAI answers and chunks; how the OpenAI
    dialects render them and their errors."""

    answers_text = True

    def answer_slots(self, data: dict[str, Any]) -> list[Slot]:
        return answers.answer_slots(data)

    def answer_texts(self, data: dict[str, Any]) -> list[str]:
        return answers.answer_texts(data)

    def finish_reason(self, data: dict[str, Any]) -> str | None:
        return answers.finish_reason(data)

    def withhold(self, data: dict[str, Any]) -> None:
        answers.withhold(data)

    def read_event(self, obj: dict[str, Any]) -> Event:
        return events.read_event(obj)

    async def guard_event(self, obj: dict[str, Any], guard: StreamFilter) -> bool:
        return await events.guard_event(obj, guard)

    def answer_body(self, result: Completion) -> bytes:
        return result.raw if result.raw is not None else orjson.dumps(result.data)

    def error_body(self, exc: GatewayError) -> bytes:
        return exc.body_bytes()


class ChatCompletions(OpenAIWire):
    """``POST /v1/chat/completions``, streamed or not."""

    name = "chat"

    def parse(self, body: dict[str, Any]) -> Call:
        model = requests.validate_chat(body)
        stream = bool(body.get("stream"))
        upstream, wants_usage = requests.upstream_body(body, stream)
        return Call("chat", model, upstream, self, stream, wants_usage,
                    requests.max_output(body), requests.choices(body))

    def prompt_tokens(self, call: Call, model: str) -> int:
        return requests.count_messages(call.body.get("messages") or [], model)

    def input_slots(self, call: Call) -> list[Slot]:
        return requests.message_slots(call.body.get("messages"))

    def stream(self, call: Call, upstream_model: str) -> events.ChunkStream:
        return events.ChunkStream(True, upstream_model)


class Completions(OpenAIWire):
    """``POST /v1/completions`` (legacy), streamed or not."""

    name = "completions"

    def parse(self, body: dict[str, Any]) -> Call:
        model = requests.validate_completions(body)
        stream = bool(body.get("stream"))
        upstream, wants_usage = requests.upstream_body(body, stream)
        return Call("completions", model, upstream, self, stream, wants_usage,
                    requests.max_output(body), requests.choices(body))

    def prompt_tokens(self, call: Call, model: str) -> int:
        return requests.count_values(call.body.get("prompt"), model)

    def input_slots(self, call: Call) -> list[Slot]:
        return requests.value_slots(call.body, "prompt")

    def stream(self, call: Call, upstream_model: str) -> events.ChunkStream:
        return events.ChunkStream(False, upstream_model)


class Embeddings(OpenAIWire):
    """``POST /v1/embeddings``: never streamed, no output text, no output tokens."""

    name = "embeddings"
    answers_text = False

    def parse(self, body: dict[str, Any]) -> Call:
        model = requests.validate_embeddings(body)
        upstream, _ = requests.upstream_body(body, stream=False)
        return Call("embeddings", model, upstream, self, max_output_tokens=0)

    def prompt_tokens(self, call: Call, model: str) -> int:
        return requests.count_values(call.body.get("input"), model)

    def input_slots(self, call: Call) -> list[Slot]:
        return requests.value_slots(call.body, "input")

    def stream(self, call: Call, upstream_model: str) -> events.ChunkStream:
        return events.ChunkStream(False, upstream_model)  # never used: validation refuses it


CHAT = ChatCompletions()
COMPLETIONS = Completions()
EMBEDDINGS = Embeddings()
