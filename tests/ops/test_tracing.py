"""OpenTelemetry spans (the ``otel`` extra): one span per request with GenAI attributes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import running_fake_openai
from tests.gateway_runner import run_gateway
from tests.helpers import CLIENT_KEY, base_config

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")


def test_a_span_per_request_with_genai_attributes(tmp_path: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the operator's provider; the gateway uses it
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another test installed a global tracer provider first")

    with running_fake_openai() as fake:
        cfg = base_config(fake.url, tmp_path, tracing={"enabled": True})
        with run_gateway(cfg) as gw:
            r = httpx.post(gw.v1 + "/chat/completions",
                           headers={"authorization": f"Bearer {CLIENT_KEY}"},
                           json={"model": "gpt-test",
                                 "messages": [{"role": "user", "content": "hi"}]})
            usage = r.json()["usage"]
            fake.mode = "status:500"
            httpx.post(gw.v1 + "/chat/completions",
                       headers={"authorization": f"Bearer {CLIENT_KEY}"},
                       json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]})
    ok, failed = exporter.get_finished_spans()
    assert ok.name == "chat gpt-test" and ok.kind == trace.SpanKind.CLIENT
    attrs = dict(ok.attributes or {})
    assert attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.response.model"] == "upstream-gpt"
    assert attrs["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert ok.end_time is not None and ok.start_time is not None and ok.end_time > ok.start_time
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "upstream_error"
