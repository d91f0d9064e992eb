"""The provider seam: what the request path needs from any upstream, and the values it gets back.

A provider turns an ``UpstreamCall`` (the client's OpenAI-shaped body, already pointed at the
upstream model) into a ``Completion`` or a stream of OpenAI chunk payloads. Providers raise only
``UpstreamError`` (502), ``UpstreamHTTPError`` (the provider's own 4xx) and ``UpstreamTimeout``
(504); they never build HTTP responses.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.settings import ModelSettings

Endpoint = Literal["chat", "completions", "embeddings"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    endpoint: Endpoint
    #: The OpenAI request body as the upstream should see it ("model" is the upstream id).
    body: dict[str, Any]
    model: ModelSettings
    request_id: str


@dataclass(slots=True)
class Completion:
    """A non-streamed answer in OpenAI's shape.

    ``raw`` is the upstream's own bytes when the body can be relayed untouched (the fast path);
    it is None once ``data`` has been changed or when the provider built ``data`` itself.
    """

    data: dict[str, Any]
    usage: Usage | None
    raw: bytes | None = None


class Provider(Protocol):
    """complete / stream / close. One instance serves every model of its kind (pooled)."""

    async def complete(self, call: UpstreamCall) -> Completion:
        """Chat, legacy completion or embeddings, answered in one piece."""

    def stream(self, call: UpstreamCall) -> AsyncGenerator[list[bytes], None]:
        """Yield the SSE events' JSON payloads (bytes, without ``data: ``), in order, as lists:
        the events that arrived together. The relay sends one list to the client in one write
        (a write per event cost a third of a stream's CPU); one event per list is fine.

        The iterator ends at the upstream's ``[DONE]`` (not yielded). Closing it early (the
        client went away) must cancel the upstream request. Errors before the first chunk and
        mid-stream are raised as upstream errors.
        """

    async def close(self) -> None:
        """Release pooled connections."""


def parse_usage(obj: Any) -> Usage | None:
    """OpenAI's ``usage`` object (or None) to a Usage; tolerant of missing fields."""
    if not isinstance(obj, dict):
        return None
    p = obj.get("prompt_tokens")
    c = obj.get("completion_tokens", 0)
    if not isinstance(p, int) or not isinstance(c, int):
        return None
    return Usage(prompt_tokens=p, completion_tokens=c or 0)
