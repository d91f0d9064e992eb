"""The OpenAI dialects: chat completions, legacy completions and embeddings.

They share one wire format (``OpenAIWire``): the gateway's providers speak it, so these dialects
pass bodies, answers and chunks through unchanged unless a guardrail rewrote them. A dialect that
translates to chat (Messages, Responses) uses ``CHAT`` as its call's wire format.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.dialects.base import Call, Slot
from gateway.dialects.chat import answers, events, requests
from gateway.errors import GatewayError
from gateway.providers.base import Completion


class OpenAIWire:
    """Where texts, usage and finish reasons are in OpenAI answers and chunks; how the OpenAI
    dialects render them and their errors."""

    answers_text = True

    # The functions themselves, not methods that call them: a call less per request or chunk.
    answer_slots = staticmethod(answers.answer_slots)
    answer_texts = staticmethod(answers.answer_texts)
    finish_reason = staticmethod(answers.finish_reason)
    withhold = staticmethod(answers.withhold)
    strip_unchecked = staticmethod(answers.strip_unchecked)
    removed_fields = staticmethod(answers.removed_fields)
    read_event = staticmethod(events.read_event)
    guard_event = staticmethod(events.guard_event)

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
