"""Optional OpenTelemetry spans, one per proxied request, with the GenAI semantic conventions.

Enabled by ``tracing.enabled: true`` and the ``otel`` extra (``pip install
'llm-guardrail-gateway[otel]'``); without either, ``Tracer.record`` is a no-op and
``opentelemetry`` is never imported. Spans go to the process's global tracer provider: configure
it as usual (``opentelemetry-instrument``, or the ``OTEL_*`` variables with an SDK provider set
up at start). When no SDK provider is installed yet and ``opentelemetry-sdk`` is available, one
is set up with the OTLP exporter if ``opentelemetry-exporter-otlp`` is installed.

The span is built from the finished ``RequestRecord`` (start = the request's arrival, end = its
last byte), off the request path's critical section and without touching the providers. So it is
a root span: the client's ``traceparent`` is not continued, and the upstream call is not a
separate child span (its duration is the ``gateway.upstream_ms`` attribute).
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.records import RequestRecord
from gateway.settings import TracingSettings

log = logging.getLogger("gateway.tracing")

_OPERATION = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}


class Tracer:
    def __init__(self, settings: TracingSettings) -> None:
        self._tracer: Any = None
        if not settings.enabled:
            return
        try:
            from opentelemetry import trace
        except ImportError:
            log.warning("tracing.enabled is set but opentelemetry is not installed "
                        "(pip install 'llm-guardrail-gateway[otel]'); no spans")
            return
        _ensure_provider(trace, settings.service_name)
        self._tracer = trace.get_tracer("gateway")

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def record(self, rec: RequestRecord) -> None:
        if self._tracer is None:
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start_ns = int(rec.created_at * 1e9)
        end_ns = start_ns + int(rec.latency_ms * 1e6)
        operation = _OPERATION.get(rec.endpoint, rec.endpoint)
        span = self._tracer.start_span(f"{operation} {rec.model or ''}".strip(),
                                       kind=SpanKind.CLIENT, start_time=start_ns,
                                       attributes=attributes(rec))
        if rec.status >= 400:
            span.set_attribute("error.type", rec.error_code or str(rec.status))
        if rec.status >= 500:
            span.set_status(Status(StatusCode.ERROR, rec.error_code or ""))
        span.end(end_time=end_ns)


def attributes(rec: RequestRecord) -> dict[str, Any]:
    """GenAI semantic-convention attributes (and a few ``gateway.*`` ones) of one request."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": _OPERATION.get(rec.endpoint, rec.endpoint),
        "gen_ai.system": rec.provider or "unknown",
        "gen_ai.request.model": rec.model or "",
        "gen_ai.usage.input_tokens": rec.prompt_tokens,
        "gen_ai.usage.output_tokens": rec.completion_tokens,
        "http.response.status_code": rec.status,
        "gateway.request_id": rec.request_id,
        "gateway.team": rec.team or "",
        "gateway.cost_usd": rec.cost_micros / 1e6,
        "gateway.flagged": rec.flagged,
        "gateway.stream": rec.stream,
    }
    if rec.upstream_model:
        attrs["gen_ai.response.model"] = rec.upstream_model
    if rec.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = [rec.finish_reason]
    if rec.upstream_ms is not None:
        attrs["gateway.upstream_ms"] = rec.upstream_ms
    if rec.ttft_ms is not None:
        attrs["gateway.ttft_ms"] = rec.ttft_ms
    return attrs


def _ensure_provider(trace: Any, service_name: str) -> None:
    """Install an SDK provider (OTLP export) unless the process already has one."""
    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
        return  # configured by the operator (or opentelemetry-instrument)
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return  # API only: spans are no-ops until someone installs a provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning("opentelemetry-exporter-otlp is not installed; spans are not exported")
    else:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
