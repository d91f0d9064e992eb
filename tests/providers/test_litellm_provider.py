"""LitellmProvider against a real (fake) Anthropic Messages API on a loopback port.

These tests pin down what litellm does to a request on its way to the provider and to the answer
on its way back: the OpenAI shape, usage taken from the provider's own figures, the error classes
the request path renders, and that an abandoned stream really closes the upstream connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout
from gateway.providers.base import Endpoint, UpstreamCall, Usage
from gateway.providers.litellm_provider import LitellmProvider
from gateway.settings import ModelSettings
from tests.fakes.anthropic import (
    DEFAULT_REPLY,
    RETRY_AFTER_S,
    Fail,
    FakeAnthropic,
    running_fake_anthropic,
)

UPSTREAM_MODEL = "claude-3-5-haiku-20241022"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with running_fake_anthropic() as server:
        yield server


@pytest.fixture
async def provider() -> AsyncIterator[LitellmProvider]:
    p = LitellmProvider()
    yield p
    await p.close()


def model_for(fake: FakeAnthropic, *, timeout_s: float = 5.0, api_key: str | None = None,
              api_base: str | None = None) -> ModelSettings:
    return ModelSettings(name="claude", provider="anthropic", model=UPSTREAM_MODEL,
                         api_base=api_base or fake.url, api_key=api_key or fake.api_key,
                         timeout_s=timeout_s)


def chat_call(fake: FakeAnthropic, endpoint: Endpoint = "chat", **body: Any) -> UpstreamCall:
    settings = body.pop("_model", None) or model_for(fake)
    base: dict[str, Any] = {
        "model": UPSTREAM_MODEL,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Say hello."}],
        "max_tokens": 64,
    }
    return UpstreamCall(endpoint=endpoint, body={**base, **body}, model=settings,
                        request_id="req-test")


async def collect(provider: LitellmProvider, call: UpstreamCall) -> list[dict[str, Any]]:
    return [orjson.loads(chunk) async for batch in provider.stream(call) for chunk in batch]


# -- non-streamed ---------------------------------------------------------------------------


async def test_chat_answer_is_openai_shaped_with_the_providers_usage(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    completion = await provider.complete(chat_call(fake, temperature=0.2))

    data = completion.data
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": DEFAULT_REPLY}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] == fake.input_tokens
    assert data["usage"]["completion_tokens"] == fake.output_tokens
    assert completion.usage == Usage(prompt_tokens=fake.input_tokens,
                                     completion_tokens=fake.output_tokens)
    assert completion.raw is None


async def test_chat_request_reaches_the_provider_in_its_own_shape(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    await provider.complete(chat_call(fake, temperature=0.2, stop=["\n\n"]))

    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == fake.api_key
    assert sent.body["model"] == UPSTREAM_MODEL
    assert sent.body["max_tokens"] == 64
    assert sent.body["temperature"] == 0.2
    assert sent.body["stop_sequences"] == ["\n\n"]
    assert sent.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert [m["role"] for m in sent.body["messages"]] == ["user"]


async def test_client_cannot_redirect_the_call_through_litellm_keywords(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    """api_base, api_key and mock_response are litellm arguments, not OpenAI body fields."""
    call = chat_call(fake, api_base="http://127.0.0.1:1", api_key="sk-attacker",
                     mock_response="pwned", metadata={"x": 1})
    completion = await provider.complete(call)

    assert completion.data["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert fake.requests[-1].headers["x-api-key"] == fake.api_key


async def test_openai_only_params_are_dropped_and_tools_are_translated(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    tool = {"type": "function", "function": {
        "name": "lookup", "description": "Look a word up.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}}}}
    call = chat_call(fake, presence_penalty=0, frequency_penalty=0, seed=1,
                     tools=[tool], tool_choice="auto")
    await provider.complete(call)

    sent = fake.requests[-1].body
    assert "presence_penalty" not in sent
    assert sent["tools"][0]["name"] == "lookup"
    assert sent["tools"][0]["input_schema"]["properties"] == {"word": {"type": "string"}}
    assert sent["tool_choice"] == {"type": "auto"}


async def test_legacy_completion(fake: FakeAnthropic, provider: LitellmProvider) -> None:
    call = UpstreamCall(endpoint="completions",
                        body={"model": UPSTREAM_MODEL, "prompt": "Say hello.", "max_tokens": 20},
                        model=model_for(fake), request_id="req-test")
    completion = await provider.complete(call)

    assert completion.data["object"] == "text_completion"
    assert completion.data["choices"][0]["text"] == DEFAULT_REPLY
    assert completion.usage == Usage(fake.input_tokens, fake.output_tokens)
    assert fake.requests[-1].body["messages"][0]["content"][0]["text"] == "Say hello."


# -- streamed --------------------------------------------------------------------------------


async def test_stream_reassembles_and_ends_with_the_providers_usage(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    chunks = await collect(provider, chat_call(
        fake, stream=True, stream_options={"include_usage": True}))

    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(ch["delta"].get("content", "") for c in chunks for ch in c["choices"])
    assert text == DEFAULT_REPLY
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"]
                if ch.get("finish_reason")]
    assert finishes == ["stop"]
    # usage comes last, alone, with OpenAI's empty choices, and carries message_start's
    # input_tokens and message_delta's output_tokens (not message_start's placeholder 1).
    assert [c for c in chunks if "usage" in c] == [chunks[-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == fake.input_tokens
    assert chunks[-1]["usage"]["completion_tokens"] == fake.output_tokens
    assert fake.requests[-1].body["stream"] is True


async def test_stream_without_include_usage_has_no_usage_chunk(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    chunks = await collect(provider, chat_call(fake, stream=True))

    assert not any("usage" in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_legacy_completion_stream(fake: FakeAnthropic, provider: LitellmProvider) -> None:
    call = UpstreamCall(endpoint="completions", model=model_for(fake), request_id="req-test",
                        body={"model": UPSTREAM_MODEL, "prompt": "Say hello.", "max_tokens": 20,
                              "stream": True, "stream_options": {"include_usage": True}})
    chunks = await collect(provider, call)

    assert "".join(ch.get("text", "") for c in chunks for ch in c["choices"]) == DEFAULT_REPLY
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == fake.output_tokens


async def test_closing_the_stream_early_closes_the_upstream_connection(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    fake.reply = " ".join(f"word{i}" for i in range(50))
    fake.delta_delay_s = 0.05
    stream = provider.stream(chat_call(fake, stream=True))
    first = orjson.loads((await anext(stream))[0])
    assert first["choices"][0]["delta"]["content"] == "word0 "

    await stream.aclose()  # what Starlette does when the client goes away

    await asyncio.wait_for(fake.disconnected.wait(), timeout=2.0)


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("status", "expected_type"), [
    (400, "invalid_request_error"),
    (403, "permission_error"),
    (404, "invalid_request_error"),
    (429, "rate_limit_error"),
])
async def test_provider_4xx_passes_through_with_its_message(
        fake: FakeAnthropic, provider: LitellmProvider, stream: bool, status: int,
        expected_type: str) -> None:
    fake.fail = Fail.http(status, "the provider says no")

    with pytest.raises(UpstreamHTTPError) as info:
        await run(provider, chat_call(fake, stream=stream))

    err = info.value
    assert err.http_status() == status
    assert err.body()["error"]["type"] == expected_type
    assert err.message == "anthropic: the provider says no"
    if status == 429:
        assert err.headers() == {"retry-after": str(RETRY_AFTER_S)}
    assert len(fake.requests) == 1, "litellm must not retry on its own"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_rejected_key_is_a_401_that_does_not_echo_the_key(
        fake: FakeAnthropic, provider: LitellmProvider, stream: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-ant-wrong-but-still-secret-42"
    call = chat_call(fake, stream=stream, _model=model_for(fake, api_key=secret))

    with caplog.at_level(logging.DEBUG), pytest.raises(UpstreamHTTPError) as info:
        await run(provider, call)

    assert info.value.http_status() == 401
    assert secret not in str(info.value.body()) and secret not in caplog.text


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("status", [500, 529])
async def test_provider_5xx_is_a_502(fake: FakeAnthropic, provider: LitellmProvider,
                                     stream: bool, status: int) -> None:
    fake.fail = Fail.http(status, "overloaded, try later")

    with pytest.raises(UpstreamError) as info:
        await run(provider, chat_call(fake, stream=stream))

    assert not isinstance(info.value, UpstreamHTTPError)
    assert info.value.http_status() == 502
    assert info.value.message == "anthropic: overloaded, try later"


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_silent_provider_times_out_as_504(fake: FakeAnthropic, provider: LitellmProvider,
                                                stream: bool) -> None:
    fake.fail = Fail.hang(10)
    call = chat_call(fake, stream=stream, _model=model_for(fake, timeout_s=0.5))

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        await run(provider, call)

    assert time.monotonic() - started < 3
    assert info.value.http_status() == 504


async def test_stream_that_stalls_midway_times_out(fake: FakeAnthropic,
                                                   provider: LitellmProvider) -> None:
    fake.delta_delay_s = 10
    call = chat_call(fake, stream=True, _model=model_for(fake, timeout_s=0.5))

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await collect(provider, call)

    assert time.monotonic() - started < 3


async def test_connection_dropped_before_the_answer_is_a_502(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    fake.fail = Fail.drop()

    with pytest.raises(UpstreamError) as info:
        await provider.complete(chat_call(fake))

    assert info.value.http_status() == 502


async def test_connection_dropped_mid_stream_raises_after_the_chunks_already_sent(
        fake: FakeAnthropic, provider: LitellmProvider) -> None:
    fake.fail = Fail.drop(after_deltas=2)
    received: list[dict[str, Any]] = []

    with pytest.raises(UpstreamError) as info:
        async for batch in provider.stream(chat_call(fake, stream=True)):
            received += [orjson.loads(chunk) for chunk in batch]

    assert info.value.http_status() == 502
    text = "".join(ch["delta"].get("content", "") for c in received for ch in c["choices"])
    assert text == "Hello from "


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_answer_that_is_not_json_is_a_502(fake: FakeAnthropic, provider: LitellmProvider,
                                                stream: bool) -> None:
    fake.fail = Fail.bad_json()

    with pytest.raises(UpstreamError) as info:
        await run(provider, chat_call(fake, stream=stream))

    assert info.value.http_status() == 502


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_unreachable_provider_is_a_502(fake: FakeAnthropic, provider: LitellmProvider,
                                             stream: bool) -> None:
    call = chat_call(fake, stream=stream,
                     _model=model_for(fake, api_base="http://127.0.0.1:1", timeout_s=2))

    with pytest.raises(UpstreamError) as info:
        await run(provider, call)

    assert info.value.http_status() == 502
    assert fake.api_key not in info.value.message


async def run(provider: LitellmProvider, call: UpstreamCall) -> None:
    """Drive the call the way the request path would, streamed or not."""
    if call.body.get("stream"):
        await collect(provider, call)
    else:
        await provider.complete(call)
