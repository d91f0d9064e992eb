"""The dialect seam: what the request path needs from an inbound API, whatever its body shape.

A *dialect* is one inbound API (OpenAI chat completions, legacy completions, embeddings; next,
Anthropic Messages and OpenAI Responses). It is the only code that knows its shapes:

* ``parse`` turns a client body into a ``Call`` (400 on a malformed body), including the body
  the provider will get, in the *wire* shape of ``Call.wire``;
* ``answer_body`` and ``stream`` render the provider's answer and events for the client;
  ``error_body`` renders an error in the dialect's own error shape.

A *wire format* (``Wire``) is the shape of what goes to and comes back from a provider: the
prompt's token count, where the texts are in a request, an answer and a stream event (``Slot``),
the usage and the finish reason, and how a blocked answer is withheld. The guardrails, the
budget meter and the record see a call only through its wire format.

Two ways to implement a dialect (CONTRACT.md section 8):

* translate: ``parse`` builds an OpenAI chat body (``Call.wire`` is the chat format), and the
  renderers turn chat answers and chunks back into the dialect's own shapes; every provider
  can serve it, and the guardrails see the translated texts;
* pass through: for a provider that speaks the dialect natively (an Anthropic model receiving
  a Messages body), ``Call.wire`` is the dialect's own wire format, so the guardrails still see
  every text slot and billing still reads the usage, in the native shapes.

The chat dialect (``dialects/chat``) is both a dialect and the chat wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import GatewayError
from gateway.providers.base import Completion, Endpoint, Usage


@dataclass(frozen=True, slots=True)
class Slot:
    """A text inside a JSON body, ``container[key]``; ``set`` writes it back in place.

    ``whole``: the text is the answer itself (content, tool-call arguments), which checks of a
    whole answer (``json``, ``refusal``) judge; False for a side text (a refusal, reasoning, a
    transcript, a name), which only span checks (pii, secrets, regex...) see.
    """

    container: Any
    key: Any
    whole: bool = True

    @property
    def text(self) -> str:
        value: str = self.container[self.key]
        return value

    def set(self, value: str) -> None:
        self.container[self.key] = value


@dataclass(slots=True)
class Call:
    """One request as the pipeline runs it, parsed by its dialect.

    ``body`` is the provider's copy, in ``wire``'s shape: the guardrails rewrite it in place
    (masking) and the pipeline names the upstream model in it; the client's own body is never
    changed through it.
    """

    endpoint: Endpoint  # the upstream API the body is for
    model: str  # the model name the client asked for
    body: dict[str, Any]
    wire: Wire
    stream: bool = False
    #: Whether the client itself asked for usage in the stream (the gateway always does).
    wants_usage: bool = False
    #: The output bound the request sets (0 for embeddings); None: the model's default.
    max_output_tokens: int | None = None
    #: How many answers the request asks for (``n``); the output bound is per answer.
    choices: int = 1


#: What the request path reads in one stream event of the wire format: ``(texts, usage,
#: finish_reason, has_content)``, the output texts it brings (content and tool-call arguments,
#: for metering), its usage, its finish reason, and whether it carries answer content (False
#: for a usage-only event). A plain tuple, because one is built for every chunk (a dataclass
#: cost ten times as much).
Event = tuple[list[str], Usage | None, str | None, bool]


class StreamFilter(Protocol):
    """The stream guard as a wire format drives it: text in, releasable text out, per window.

    A window is one text of the answer, ``(choice, name)``: ``name`` is ``"content"`` for a
    choice's content (what ``finish_all`` releases at a stream's end), otherwise the wire
    format's own name for the field (a tool call's arguments, reasoning, a refusal...).
    ``whole`` windows are judged by whole-answer checks when they finish; side texts are not.
    """

    blocked: bool
    #: Whether fields that cannot be checked (logprobs, audio) are removed from events.
    strips: bool

    async def feed(self, key: tuple[int, str], text: str, *, whole: bool = True) -> str: ...

    async def check(self, key: tuple[int, str], text: str) -> str:
        """A text that arrives whole (a tool's name): scanned and released at once."""

    async def finish(self, key: tuple[int, str]) -> str: ...

    def keys(self, index: int) -> list[tuple[int, str]]:
        """The windows opened for choice ``index``."""


class Wire(Protocol):
    """Where the texts, usage and finish reasons are in one wire shape."""

    #: Whether answers hold text for output rules (embeddings do not).
    answers_text: bool

    def prompt_tokens(self, call: Call, model: str) -> int:
        """The prompt's tokens in ``call.body`` with ``model``'s tokenizer (budget estimate)."""

    def input_slots(self, call: Call) -> list[Slot]:
        """Every text an input rule must see in ``call.body``."""

    def answer_slots(self, data: dict[str, Any]) -> list[Slot]:
        """Every text an output rule must see in a non-streamed answer."""

    def answer_texts(self, data: dict[str, Any]) -> list[str]:
        """The output text billed when the provider reported no usage."""

    def finish_reason(self, data: dict[str, Any]) -> str | None:
        """The first answer's finish reason, for the record."""

    def withhold(self, data: dict[str, Any]) -> None:
        """Turn a blocked answer into the shape's own "withheld by the content filter"."""

    def strip_unchecked(self, data: dict[str, Any]) -> None:
        """Remove from an answer what output rules cannot check (token log-probabilities,
        audio), when a policy rewrites answers."""

    def removed_fields(self, body: dict[str, Any]) -> tuple[str, ...]:
        """The fields the request asked for that such a policy removes from its answer (sent
        to the client in ``x-gateway-removed-fields``)."""

    def read_event(self, obj: dict[str, Any]) -> Event:
        """One stream event; raises ``UpstreamError`` for an error event."""

    async def guard_event(self, obj: dict[str, Any], guard: StreamFilter) -> bool:
        """Pass the event's texts through the guard, in place; False when nothing is left."""


class StreamRenderer(Protocol):
    """One stream's events for the client, in the dialect's shape (stateful per stream)."""

    def event(self, obj: dict[str, Any], raw: bytes | None) -> bytes:
        """A wire event as client bytes; ``raw`` is its unchanged payload when it was not
        rewritten (a dialect on its own wire format sends it as is)."""

    def text(self, last: dict[str, Any], text: str) -> bytes:
        """Text the guard held back until the end of a stream that gave no finish reason;
        ``last`` is the last wire event read (sent or not), whose ids the event copies."""

    def end(self, last: dict[str, Any], reason: str) -> bytes:
        """The last event of a stream the gateway ends itself (``length``, ``content_filter``)."""

    def error(self, exc: GatewayError) -> bytes:
        """A failure after the first byte, and the end of the stream."""

    def done(self) -> bytes:
        """The end of a complete stream."""


class Dialect(Protocol):
    """One inbound API: parse its bodies, render answers, stream events and errors its way."""

    name: str  # the record's ``endpoint``

    def parse(self, body: dict[str, Any]) -> Call:
        """Validate a client body (``InvalidRequest`` on a bad one) and build the call."""

    def answer_body(self, result: Completion) -> bytes:
        """The client's JSON body of a non-streamed answer (guarded, in the wire shape)."""

    def stream(self, call: Call, upstream_model: str) -> StreamRenderer:
        """The renderer of one stream."""

    def error_body(self, exc: GatewayError) -> bytes:
        """An error in the dialect's shape."""

