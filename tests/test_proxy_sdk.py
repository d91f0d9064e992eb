"""Every proxied endpoint driven by the official openai SDK (sync, async, streaming)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import RunningGateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY


def client(gw: RunningGateway, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def test_chat_non_streamed_relays_answer_and_bills(gw: RunningGateway, fake: FakeOpenAI) -> None:
    raw = client(gw).chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], max_tokens=50)
    resp = raw.parse()
    assert resp.choices[0].message.content == fake.reply
    assert resp.usage is not None and resp.usage.prompt_tokens == fake.prompt_tokens
    # The upstream saw its own model id and our body, never the client's key.
    assert fake.last["model"] == "upstream-gpt"
    assert fake.last["max_tokens"] == 50
    assert fake.headers[-1]["Authorization"] == "Bearer sk-upstream-secret"
    # 11 prompt tokens at $1/Mtok + 9 completion tokens at $2/Mtok = 29 micro-dollars.
    assert raw.headers["x-gateway-cost-usd"] == "0.000029"
    assert raw.headers["x-request-id"].startswith("req_")
    assert float(raw.headers["x-gateway-budget-remaining-usd"]) == pytest.approx(100 - 29e-6)


def test_client_request_id_is_kept(gw: RunningGateway) -> None:
    raw = client(gw).chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "my-trace-123"})
    assert raw.headers["x-request-id"] == "my-trace-123"
    gw.flush()
    page = httpx.get(gw.url + "/admin/requests", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert page.json()["items"][0]["request_id"] == "my-trace-123"


def test_chat_streamed_sync(gw: RunningGateway, fake: FakeOpenAI) -> None:
    stream = client(gw).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fake.reply
    # The gateway asked for usage; the client did not, so it never sees the usage chunk.
    assert fake.last["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in chunks)
    gw.flush()
    rec = _last_record(gw)
    assert rec["stream"] is True
    assert rec["completion_tokens"] == len(fake.reply.split())
    assert rec["usage_estimated"] is False
    assert rec["ttft_ms"] is not None and rec["finish_reason"] == "stop"


@pytest.mark.parametrize("fragment", [1, 7, 64])
def test_stream_split_anywhere_by_the_network(gw: RunningGateway, fake: FakeOpenAI,
                                              fragment: int) -> None:
    """Events reach the gateway cut at any byte and several to a read; each is relayed whole."""
    fake.fragment_bytes = fragment
    fake.pieces = ["Über ", "naïve ", "café—", "done."]
    chunks = list(client(gw).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Über naïve café—done."
    assert chunks[-1].usage is not None
    gw.flush()
    rec = _last_record(gw)
    assert rec["status"] == 200 and rec["finish_reason"] == "stop"
    assert rec["usage_estimated"] is False


def test_chat_streamed_with_usage_when_asked(gw: RunningGateway) -> None:
    stream = client(gw).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11


def test_stream_without_upstream_usage_is_counted_and_marked(gw: RunningGateway,
                                                             fake: FakeOpenAI) -> None:
    fake.mode = "no_usage"
    list(client(gw).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True))
    gw.flush()
    rec = _last_record(gw)
    assert rec["usage_estimated"] is True
    assert rec["completion_tokens"] > 0 and rec["prompt_tokens"] > 0
    assert rec["cost_micros"] > 0


async def test_async_client_chat_and_stream(gw: RunningGateway, fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0) as c:
        resp = await c.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == fake.reply
        stream = await c.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        assert text == fake.reply


def test_legacy_completions(gw: RunningGateway, fake: FakeOpenAI) -> None:
    resp = client(gw).completions.create(model="gpt-test", prompt="Say hi")
    assert resp.choices[0].text == fake.reply
    assert fake.last["prompt"] == "Say hi"


def test_embeddings(gw: RunningGateway, fake: FakeOpenAI) -> None:
    resp = client(gw).embeddings.create(model="embed-test", input=["a", "b"])
    assert len(resp.data) == 2
    assert fake.last["model"] == "upstream-embed"
    gw.flush()
    rec = _last_record(gw)
    assert rec["endpoint"] == "embeddings" and rec["prompt_tokens"] == fake.prompt_tokens


def test_models_lists_only_allowed(gw: RunningGateway) -> None:
    ids = sorted(m.id for m in client(gw).models.list())
    assert ids == ["embed-test", "gpt-test", "mock"]


def test_mock_model_echoes_with_usage(gw: RunningGateway) -> None:
    resp = client(gw).chat.completions.create(
        model="mock", messages=[{"role": "user", "content": "ping pong"}])
    assert resp.choices[0].message.content == "Echo: ping pong"
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    stream = client(gw).chat.completions.create(
        model="mock", messages=[{"role": "user", "content": "ping pong"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Echo: ping pong")
    assert chunks[-1].usage is not None
    emb = client(gw).embeddings.create(model="mock", input="x")
    assert len(emb.data[0].embedding) == 16


def test_health_ready_metrics_openapi(gw: RunningGateway) -> None:
    client(gw).chat.completions.create(model="gpt-test",
                                       messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(gw.url + "/healthz").status_code == 200
    ready = httpx.get(gw.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    text = httpx.get(gw.url + "/metrics").text
    assert 'gateway_requests_total{endpoint="chat",model="gpt-test",status="200",team="search"}' \
        in text
    assert "gateway_cost_usd_total" in text and "gateway_tokens_total" in text
    doc = httpx.get(gw.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v1/chat/completions" in doc["paths"]


def _last_record(gw: RunningGateway) -> dict[str, object]:
    page = httpx.get(gw.url + "/admin/requests?limit=1",
                     headers={"authorization": f"Bearer {ADMIN_KEY}"})
    item: dict[str, object] = page.json()["items"][0]
    return item
