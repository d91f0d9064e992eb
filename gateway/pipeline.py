"""The request path of the proxied APIs, top to bottom, on the call its dialect parsed.

The order of the steps is the spec: authenticate (401), read the body and parse it (413/400),
resolve the model (404/403), reserve the budget (429/503), check the input (400), call the
provider (502/504), check the output, answer, settle. Every request ends as one record, refused
or served; every hold is settled or released exactly once, by the one owner ``_Settlement``
names: this module for an answer or a refusal, the stream relay for a stream.

The dialect is the only code that knows the body's shape; the provider is reached through one
seam, ``Services.upstream`` (``complete`` / ``stream`` of an ``UpstreamCall``), where a router
that picks a deployment and runs the attempts can stand in for the provider table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import Principal, bearer_key
from gateway.bodies import read_json
from gateway.budget.hold import Hold
from gateway.budget.meter import StreamMeter
from gateway.dialects.base import Call, Dialect
from gateway.errors import GatewayError, ModelNotAllowed, ModelNotFound, error_code_of
from gateway.guardrails.enforce import Vault
from gateway.guardrails.policy import Policy
from gateway.guardrails.stream_guard import StreamGuard
from gateway.pricing import Estimate
from gateway.providers.base import Completion, UpstreamCall, Usage
from gateway.records import RequestIds, RequestRecord
from gateway.relay import StreamRelay
from gateway.render import render_error
from gateway.services import Services
from gateway.settings import ModelSettings
from gateway.streaming import SSEResponse
from gateway.tokens import count_text


def request_id_of(header: str | None, ids: RequestIds) -> str:
    """The client's ``x-request-id`` when it is a sane one, else a new id."""
    if header and len(header) <= 128 and header.isprintable():
        return header
    return ids.new()


def _headers(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """``authorization``, ``x-request-id`` and ``content-length`` in one pass over the raw
    headers (a ``Headers`` lookup scans and decodes them all, per lookup)."""
    auth = rid = length = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            auth = value.decode("latin-1")
        elif name == b"x-request-id":
            rid = value.decode("latin-1")
        elif name == b"content-length":
            length = value.decode("latin-1")
    return auth, rid, length


def resolve_model(s: Services, principal: Principal, name: str) -> ModelSettings:
    model = s.models.get(name)
    if model is None:
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
    team = principal.team
    if team is not None and team.models is not None and name not in team.models:
        raise ModelNotAllowed(f"Team '{team.name}' may not use the model '{name}'.",
                              param="model")
    return model


@dataclass(slots=True)
class _Settlement:
    """Who settles this request's hold and submits its record, and at what cost.

    Until ``hand_to_stream``, this module owns both: ``close`` settles the hold at the cost
    ``priced`` recorded once the upstream answered (0 otherwise, which releases it) and submits
    the record. From ``hand_to_stream`` on, the stream relay owns both (``StreamRelay.finish``)
    and ``close`` does nothing. Request-scoped: it never outlives the request.
    """

    record: RequestRecord
    hold: Hold | None = None
    cost_micros: int = 0
    tokens: int = 0
    _streamed: bool = False

    def priced(self, cost_micros: int, tokens: int) -> None:
        """The upstream answered: the hold settles at this, even if the answer is withheld."""
        self.cost_micros, self.tokens = cost_micros, tokens

    def hand_to_stream(self) -> None:
        self._streamed = True

    async def close(self, s: Services) -> None:
        if self._streamed:
            return
        if self.hold is not None:
            await self.hold.settle(self.cost_micros, self.tokens)
        s.submit(self.record)


async def serve(s: Services, dialect: Dialect, scope: Scope, receive: Receive, send: Send
                ) -> None:
    """One API request as a plain ASGI call (the fast path: no Starlette middleware stack).

    The answer is sent first; then the hold is settled (or released) and the record submitted,
    so the client does not wait for the budget store's round trip, the metrics or the log queue.
    Errors are rendered here, in the dialect's shape, by the same renderer as every other route.
    """
    auth, rid_header, length = _headers(scope)
    rid = request_id_of(rid_header, s.request_ids)
    settlement = _Settlement(RequestRecord(rid, time.time(), dialect.name))
    record = settlement.record
    response: ASGIApp
    try:
        try:
            response = await _serve(s, dialect, settlement, auth, receive, length)
        except GatewayError as exc:
            record.finish(exc.http_status(), error_code_of(exc))
            response = render_error(exc, rid, scope["path"], dialect.error_body)
        except Exception as exc:
            record.finish(500, "internal_error")
            response = render_error(exc, rid, scope["path"], dialect.error_body)
        except BaseException:
            record.finish(500, "internal_error")
            raise
        await response(scope, receive, send)
    finally:
        await settlement.close(s)


async def _serve(s: Services, dialect: Dialect, settlement: _Settlement, auth: str | None,
                 receive: Receive, length: str | None) -> JsonAnswer | SSEResponse:
    record = settlement.record
    principal = await s.auth.authenticate(bearer_key(auth))
    record.team, record.key_id = principal.team_name, principal.key_id
    call = dialect.parse(await read_json(receive, length, s.settings.server.max_body_bytes))
    record.model = call.model
    model = resolve_model(s, principal, call.model)
    s.ops.switches.check(record.team, model.name)  # 503 model_disabled / team_disabled
    record.upstream_model, record.provider = model.upstream_model, model.provider
    record.stream = call.stream
    wire = call.wire
    estimate = s.pricing.estimate(model, wire.prompt_tokens(call, model.upstream_model),
                                  call.max_output_tokens, call.choices)
    settlement.hold = hold = await s.budgets.reserve(principal, estimate)
    call.body["model"] = model.upstream_model
    policy = s.guardrails.for_team(record.team)
    vault = Vault()
    if policy is not None:
        vault = await s.guardrails.check_input(policy, wire.input_slots(call), call.body, record)
    upstream = UpstreamCall(call.endpoint, call.body, model, record.request_id)
    notice = _removed_fields(call, policy)
    if call.stream:
        guard = (StreamGuard(s.guardrails, policy, vault, record, call.body)
                 if policy is not None and policy.guards_output else None)
        return await _stream(s, dialect, call, upstream, estimate, settlement, guard, notice)
    started = time.perf_counter()
    result = await s.upstream.complete(upstream)
    record.upstream_ms = (time.perf_counter() - started) * 1e3
    _price(s, model, call, estimate, result, settlement)  # paid upstream, even if blocked below
    if policy is not None and wire.answers_text and (policy.output_rules or vault):
        if policy.redacts_output:
            wire.strip_unchecked(result.data)  # logprobs, audio: no rule can check them
        if await s.guardrails.check_output(policy, wire.answer_slots(result.data), vault,
                                           record, call.body):
            wire.withhold(result.data)
        result.raw = None  # the answer may have changed: serialize it again
    record.finish_reason = wire.finish_reason(result.data)
    return _answer(dialect, settlement, hold, result, notice)


def _removed_fields(call: Call, policy: Policy | None) -> dict[str, str]:
    """``x-gateway-removed-fields``: what the request asked for that the policy's output rules
    take out of the answer because they cannot check it (logprobs, audio)."""
    if policy is None or not policy.redacts_output or not call.wire.answers_text:
        return {}
    removed = call.wire.removed_fields(call.body)
    return {"x-gateway-removed-fields": ", ".join(removed)} if removed else {}


async def _stream(s: Services, dialect: Dialect, call: Call, upstream: UpstreamCall,
                  estimate: Estimate, settlement: _Settlement, guard: StreamGuard | None,
                  notice: dict[str, str]) -> SSEResponse:
    """Open the upstream stream (an error before its first event is an HTTP error) and hand
    the request's hold and record to the relay that will settle them."""
    record, hold, model = settlement.record, settlement.hold, upstream.model
    assert hold is not None
    started = time.perf_counter()
    events = s.upstream.stream(upstream)
    try:
        first = await anext(events, None)
    except BaseException:
        await events.aclose()
        raise
    meter = StreamMeter(hold, s.pricing.price(model), estimate, model.upstream_model)
    relay = StreamRelay(call, dialect.stream(call, model.upstream_model), first or [b"{}"],
                        events, meter, record, s.submit, guard=guard,
                        upstream_started=started)
    settlement.hand_to_stream()
    return SSEResponse(relay, {"x-request-id": record.request_id, **hold.headers(), **notice})


def _price(s: Services, model: ModelSettings, call: Call, estimate: Estimate,
           result: Completion, settlement: _Settlement) -> None:
    """What the answer cost; the hold settles at this once the answer is sent."""
    record = settlement.record
    usage = result.usage
    if usage is None:
        completion = sum(count_text(t, model.upstream_model)
                         for t in call.wire.answer_texts(result.data))
        usage = Usage(estimate.prompt_tokens, completion)
        record.usage_estimated = True
    record.cost_micros = cost = s.pricing.cost(model, usage)
    settlement.priced(cost, usage.total_tokens)
    record.prompt_tokens, record.completion_tokens = usage.prompt_tokens, usage.completion_tokens


class JsonAnswer:
    """A 200 JSON answer as two ASGI messages (Starlette's ``Response`` re-derives its headers
    per instance; on the hot path these are built once, as bytes)."""

    _FIXED = [(b"content-type", b"application/json")]

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body = body
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [*self._FIXED, (b"content-length", str(len(self.body)).encode())]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def _answer(dialect: Dialect, settlement: _Settlement, hold: Hold, result: Completion,
            notice: dict[str, str]) -> JsonAnswer:
    """The served answer; its budget headers are the reservation's figures with the estimate
    replaced by the actual cost (the store's own settle lands just after the answer is sent)."""
    record = settlement.record
    hold.predict_settled(settlement.cost_micros, settlement.tokens)
    record.finish(200)
    headers = {"x-request-id": record.request_id,
               "x-gateway-cost-usd": f"{settlement.cost_micros / 1e6:.6f}", **hold.headers(),
               **notice}
    return JsonAnswer(dialect.answer_body(result), headers)
