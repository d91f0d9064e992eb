"""The litellm path end to end: the openai SDK -> the gateway -> litellm -> a fake Anthropic API."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.fakes.anthropic import Fail, running_fake_anthropic
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY


def _config(url: str, api_key: str, tmp_path: Path) -> dict[str, object]:
    return {
        "server": {"admin_keys": [ADMIN_KEY]},
        "stores": {"logs": f"sqlite:///{tmp_path}/gw.db"},
        "models": [{"name": "claude", "provider": "anthropic", "model": "claude-haiku-4-5",
                    "api_base": url, "api_key": api_key, "timeout_s": 5}],
        "teams": [{"name": "t", "keys": [CLIENT_KEY], "budget": {"usd": 10}}],
    }


async def test_anthropic_through_litellm(tmp_path: Path) -> None:
    async with running_fake_anthropic() as fake:
        with run_gateway(_config(fake.url, fake.api_key, tmp_path)) as gw:
            async with openai.AsyncOpenAI(base_url=gw.v1, api_key=CLIENT_KEY,
                                          max_retries=0) as c:
                raw = await c.chat.completions.with_raw_response.create(
                    model="claude", max_tokens=64,
                    messages=[{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "hello"}])
                resp = raw.parse()
                assert resp.choices[0].message.content
                assert resp.usage is not None
                assert resp.usage.prompt_tokens == fake.input_tokens
                assert resp.usage.completion_tokens == fake.output_tokens
                sent = fake.requests[-1].body
                assert sent["system"] == "Be brief." or "Be brief." in str(sent["system"])
                assert sent["max_tokens"] == 64
                # Priced from litellm's table: claude-haiku-4-5 is $1 / $5 per Mtok.
                expected = fake.input_tokens * 1.0 + fake.output_tokens * 5.0
                assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(
                    expected / 1e6, abs=1e-6)

                stream = await c.chat.completions.create(
                    model="claude", stream=True, messages=[{"role": "user", "content": "hi"}])
                text = "".join([ch.choices[0].delta.content or ""
                                async for ch in stream if ch.choices])
                assert text

                fake.fail = Fail.http(429)
                with pytest.raises(openai.RateLimitError):
                    await c.chat.completions.create(
                        model="claude", messages=[{"role": "user", "content": "hi"}])
            gw.flush()
            async with httpx.AsyncClient() as h:
                r = await h.get(gw.url + "/admin/requests",
                                headers={"authorization": f"Bearer {ADMIN_KEY}"})
            items = r.json()["items"]
            assert [i["status"] for i in items] == [429, 200, 200]
            streamed = items[1]
            assert streamed["stream"] is True and streamed["usage_estimated"] is False
            assert streamed["completion_tokens"] == fake.output_tokens
            assert streamed["provider"] == "anthropic"


def _keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


async def test_answers_carry_only_openai_fields(tmp_path: Path) -> None:
    """Issue 13, item 8: litellm adds ``provider_specific_fields`` to answers and chunks; an
    OpenAI client gets OpenAI's shapes, streamed or not."""
    async with running_fake_anthropic(thinking="The user greets me; greet back.") as fake:
        with run_gateway(_config(fake.url, fake.api_key, tmp_path)) as gw:
            async with httpx.AsyncClient(timeout=10) as h:
                auth = {"authorization": f"Bearer {CLIENT_KEY}"}
                body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
                r = await h.post(gw.v1 + "/chat/completions", headers=auth, json=body)
                assert r.status_code == 200
                answer = r.json()
                r = await h.post(gw.v1 + "/chat/completions", headers=auth,
                                 json={**body, "stream": True})
                chunks = [orjson.loads(line[6:]) for line in r.text.splitlines()
                          if line.startswith("data: {")]
    assert answer["choices"][0]["message"]["content"] and len(chunks) > 1
    # The thinking still reaches the client, as OpenAI-compatible servers send it.
    assert answer["choices"][0]["message"]["reasoning_content"] == fake.thinking
    assert "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks
                   if c["choices"]) == fake.thinking
    for obj in (answer, *chunks):
        assert "provider_specific_fields" not in _keys(obj), obj
