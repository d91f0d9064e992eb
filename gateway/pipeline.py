"""The request path of /v1/chat/completions, /v1/completions and /v1/embeddings, top to bottom.

The order of the steps is the spec: authenticate (401), read and validate the body (413/400),
resolve the model (404/403), reserve the budget (429/503), call the provider (502/504), settle.
Every request ends as one record, refused or served; every hold is settled or released. A stream
hands its hold and record to ``StreamRelay``, which settles them when the stream ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import Principal, bearer_key
from gateway.bodies import VALIDATORS, read_json
from gateway.budget.budgets import Hold
from gateway.errors import GatewayError, ModelNotAllowed, ModelNotFound, error_code_of
from gateway.guardrails.enforce import Vault
from gateway.guardrails.stream_guard import StreamGuard
from gateway.providers.base import Completion, Endpoint, UpstreamCall, Usage
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


def _upstream_body(body: dict[str, Any], model: ModelSettings, endpoint: Endpoint
                   ) -> tuple[dict[str, Any], bool]:
    """The body the upstream gets, and whether the client itself asked for a usage chunk."""
    out = dict(body)
    out["model"] = model.upstream_model
    wants_usage = False
    if endpoint != "embeddings" and body.get("stream"):
        opts = body.get("stream_options")
        wants_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        # The gateway always needs the usage for billing; it strips the chunk if not asked.
        out["stream_options"] = {**(opts if isinstance(opts, dict) else {}),
                                 "include_usage": True}
    return out, wants_usage


@dataclass
class _Call:
    """What the steps of one request share (request-scoped; never outlives the request)."""

    record: RequestRecord
    hold: Hold | None = None
    handed_off: bool = False  # a stream settles and records itself (StreamRelay.finish)
    cost_micros: int = 0  # what the hold settles at once the upstream answered; else 0 (release)
    tokens: int = 0


async def serve(s: Services, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send
                ) -> None:
    """One API request as a plain ASGI call (the fast path: no Starlette middleware stack).

    The answer is sent first; then the hold is settled (or released) and the record submitted,
    so the client does not wait for the budget store's round trip, the metrics or the log queue.
    Errors are rendered here, in OpenAI's shape, by the same renderer as every other route.
    """
    auth, rid_header, length = _headers(scope)
    rid = request_id_of(rid_header, s.request_ids)
    c = _Call(RequestRecord(rid, time.time(), endpoint))
    response: ASGIApp
    try:
        try:
            response = await _serve(s, endpoint, c, auth, receive, length)
        except GatewayError as exc:
            c.record.finish(exc.http_status(), error_code_of(exc))
            response = render_error(exc, rid, scope["path"])
        except Exception as exc:
            c.record.finish(500, "internal_error")
            response = render_error(exc, rid, scope["path"])
        except BaseException:
            c.record.finish(500, "internal_error")
            raise
        await response(scope, receive, send)
    finally:
        if not c.handed_off:
            if c.hold is not None:
                # Settles what _answer priced; releases a hold whose request was not served.
                await c.hold.settle(c.cost_micros, c.tokens)
            s.submit(c.record)


async def _serve(s: Services, endpoint: Endpoint, c: _Call, auth: str | None, receive: Receive,
                 length: str | None) -> JsonAnswer | SSEResponse:
    record = c.record
    principal = await s.auth.authenticate(bearer_key(auth))
    record.team, record.key_id = principal.team_name, principal.key_id
    body = await read_json(receive, length, s.settings.server.max_body_bytes)
    name = VALIDATORS[endpoint](body)
    record.model = name
    model = resolve_model(s, principal, name)
    s.ops.switches.check(record.team, model.name)  # 503 model_disabled / team_disabled
    record.upstream_model, record.provider = model.upstream_model, model.provider
    record.stream = bool(body.get("stream"))
    estimate = s.pricing.estimate(model, endpoint, body)
    c.hold = hold = await s.budgets.reserve(principal, estimate)
    upstream_body, wants_usage = _upstream_body(body, model, endpoint)
    policy = s.guardrails.for_team(record.team)
    vault = Vault()
    if policy is not None:
        vault = await s.guardrails.check_input(policy, endpoint, upstream_body, record)
    call = UpstreamCall(endpoint, upstream_body, model, record.request_id)
    provider = s.providers.for_model(model)
    started = time.perf_counter()
    if record.stream:
        upstream = provider.stream(call)
        try:
            first = await anext(upstream, None)  # errors before any byte are HTTP errors
        except BaseException:
            await upstream.aclose()
            raise
        guard = (StreamGuard(s.guardrails, policy, vault, record, body)
                 if policy is not None and policy.guards_output else None)
        relay = StreamRelay(s, model, hold, record, estimate, first or [b"{}"], upstream,
                            client_wants_usage=wants_usage, upstream_started=started,
                            guard=guard)
        c.handed_off = True
        return SSEResponse(relay, {"x-request-id": record.request_id, **hold.headers()})
    result = await provider.complete(call)
    record.upstream_ms = (time.perf_counter() - started) * 1e3
    _price(s, model, c, estimate.prompt_tokens, result)  # paid upstream, even if blocked below
    if policy is not None and endpoint != "embeddings" and (policy.output_rules or vault):
        await s.guardrails.check_output(policy, result.data, vault, record, body)
        result.raw = None  # the answer may have changed: serialize it again
    return _answer(c, result)


def _price(s: Services, model: ModelSettings, c: _Call, estimated_prompt: int,
           result: Completion) -> None:
    """What the answer cost: the hold settles at this once the answer is sent (``serve``)."""
    record = c.record
    usage = result.usage
    if usage is None:
        usage = Usage(estimated_prompt, _count_output(result.data, model))
        record.usage_estimated = True
    c.cost_micros = record.cost_micros = s.pricing.cost(model, usage)
    c.tokens = usage.total_tokens
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


def _answer(c: _Call, result: Completion) -> JsonAnswer:
    """The served answer; its budget headers are the reservation's figures with the estimate
    replaced by the actual cost (the store's own settle lands just after the answer is sent)."""
    hold, record = c.hold, c.record
    assert hold is not None
    hold.predict_settled(c.cost_micros, c.tokens)
    choices = result.data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        record.finish_reason = choices[0].get("finish_reason")
    record.finish(200)
    headers = {"x-request-id": record.request_id,
               "x-gateway-cost-usd": f"{c.cost_micros / 1e6:.6f}", **hold.headers()}
    body = result.raw if result.raw is not None else orjson.dumps(result.data)
    return JsonAnswer(body, headers)


def _count_output(data: dict[str, Any], model: ModelSettings) -> int:
    """Completion tokens of an answer whose upstream reported no usage."""
    total = 0
    for choice in data.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if isinstance(text, str):
            total += count_text(text, model.upstream_model)
    return total
