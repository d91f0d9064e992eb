"""Contract section 5: each refusal has its status, type and code, and the SDK raises its class.

Every refused request is still recorded, and the gateway keeps serving afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gw(fake: FakeOpenAI, tmp_path: Path) -> Iterator[RunningGateway]:
    cfg = base_config(fake.url, tmp_path)
    cfg["teams"].append({"name": "broke", "keys": ["sk-broke"],
                         "budget": {"usd": 0.0, "period": "day"}})
    with run_gateway(cfg) as g:
        yield g


def sdk(gw: RunningGateway, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def post(gw: RunningGateway, body: Any, *, key: str = CLIENT_KEY, raw: bytes | None = None
         ) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(gw.v1 + "/chat/completions", headers=headers,
                      content=raw, json=None if raw is not None else body, timeout=10)


def assert_error(r: httpx.Response, status: int, etype: str, code: str) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["type"], err["code"]) == (etype, code)
    assert isinstance(err["message"], str) and err["message"]
    assert "param" in err


def test_bad_key_is_401(gw: RunningGateway) -> None:
    with pytest.raises(openai.AuthenticationError) as e:
        sdk(gw, "sk-nope").chat.completions.create(model="gpt-test", messages=MSG)  # type: ignore[arg-type]
    assert e.value.code == "invalid_api_key"
    assert_error(post(gw, {"model": "gpt-test", "messages": MSG}, key=""), 401,
                 "authentication_error", "invalid_api_key")


def test_admin_key_cannot_proxy(gw: RunningGateway) -> None:
    assert post(gw, {"model": "gpt-test", "messages": MSG}, key=ADMIN_KEY).status_code == 401


def test_model_not_allowed_is_403(gw: RunningGateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as e:
        sdk(gw).chat.completions.create(model="forbidden-model", messages=MSG)  # type: ignore[arg-type]
    assert e.value.code == "model_not_allowed"


def test_unknown_model_is_404(gw: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        sdk(gw).chat.completions.create(model="no-such-model", messages=MSG)  # type: ignore[arg-type]
    assert e.value.code == "model_not_found"


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"", b'{"model": 5, "messages": []}',
                                 b'{"model": "gpt-test"}',
                                 b'{"model": "gpt-test", "messages": [{"role": "x"}]}',
                                 b'{"model": "gpt-test", "messages": [{"role": "user"}],'
                                 b' "stream": "yes"}',
                                 b'{"model": "gpt-test", "messages": [{"role": "user"}],'
                                 b' "max_tokens": -1}'])
def test_malformed_bodies_are_400(gw: RunningGateway, raw: bytes) -> None:
    assert_error(post(gw, None, raw=raw), 400, "invalid_request_error", "invalid_request")


def test_sdk_raises_bad_request_for_invalid_field(gw: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gw).chat.completions.create(model="gpt-test", messages=MSG,  # type: ignore[arg-type]
                                        max_tokens=0)
    assert e.value.code == "invalid_request"


def test_huge_body_is_413(gw: RunningGateway) -> None:
    big = [{"role": "user", "content": "x" * 100_000}]
    with pytest.raises(openai.APIStatusError) as e:
        sdk(gw).chat.completions.create(model="gpt-test", messages=big)  # type: ignore[arg-type]
    assert e.value.status_code == 413 and e.value.code == "request_too_large"


def test_budget_exhausted_is_429_no_retry(gw: RunningGateway, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as e:
        sdk(gw, "sk-broke").chat.completions.create(model="gpt-test", messages=MSG)  # type: ignore[arg-type]
    assert e.value.code == "budget_exceeded"
    assert e.value.response.headers["x-should-retry"] == "false"
    assert e.value.body["type"] == "insufficient_quota"  # type: ignore[index]
    assert fake.requests == []  # refused before the upstream call: it costs nothing


@pytest.mark.parametrize(("mode", "cls", "status", "code"), [
    ("status:500", openai.APIStatusError, 502, "upstream_error"),
    ("invalid_json", openai.APIStatusError, 502, "upstream_error"),
    ("hang", openai.APIStatusError, 504, "upstream_timeout"),
    ("status:400", openai.BadRequestError, 400, "fake_code"),
    ("status:429", openai.RateLimitError, 429, "fake_code"),
])
def test_upstream_failures(gw: RunningGateway, fake: FakeOpenAI, mode: str, cls: type,
                           status: int, code: str) -> None:
    fake.mode = mode
    with pytest.raises(cls) as e:
        sdk(gw).chat.completions.create(model="gpt-test", messages=MSG)  # type: ignore[arg-type]
    assert e.value.status_code == status
    assert e.value.code == code
    if mode == "status:429":
        assert e.value.response.headers["retry-after"] == "7"
    # The gateway keeps serving, and the failure is recorded.
    fake.mode = "ok"
    assert sdk(gw).chat.completions.create(model="gpt-test", messages=MSG).choices  # type: ignore[arg-type]
    gw.flush()
    items = _records(gw)
    assert items[1]["status"] == status and items[1]["error_code"] == code


def test_upstream_unreachable_is_502(tmp_path: Path) -> None:
    cfg = base_config("http://127.0.0.1:9/v1", tmp_path)
    with run_gateway(cfg) as gw, pytest.raises(openai.APIStatusError) as e:
        sdk(gw).chat.completions.create(model="gpt-test", messages=MSG)  # type: ignore[arg-type]
    assert e.value.status_code == 502 and e.value.code == "upstream_error"


@pytest.mark.parametrize("mode", ["drop_mid_stream", "error_event"])
def test_stream_broken_mid_way_ends_with_error_event(gw: RunningGateway, fake: FakeOpenAI,
                                                     mode: str) -> None:
    fake.mode = mode
    stream = sdk(gw).chat.completions.create(model="gpt-test", messages=MSG,  # type: ignore[arg-type]
                                             stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got)  # the first chunks did arrive before the failure
    gw.flush()
    rec = _records(gw)[0]
    assert rec["status"] == 502 and rec["error_code"] == "upstream_error"
    assert rec["usage_estimated"] is True
    status = gw.call(gw.services.budgets.status("search"))
    assert status["reserved_usd"] == 0
    assert status["spent_usd"] > 0  # what was served is billed


def test_stream_upstream_error_before_first_byte_is_http_error(gw: RunningGateway,
                                                               fake: FakeOpenAI) -> None:
    fake.mode = "status:500"
    with pytest.raises(openai.APIStatusError) as e:
        sdk(gw).chat.completions.create(model="gpt-test", messages=MSG, stream=True)  # type: ignore[arg-type]
    assert e.value.status_code == 502


def test_client_disconnect_cancels_upstream_and_releases(gw: RunningGateway,
                                                         fake: FakeOpenAI) -> None:
    fake.chunks, fake.chunk_delay_s = 9, 0.3
    with httpx.stream("POST", gw.v1 + "/chat/completions",
                      headers={"authorization": f"Bearer {CLIENT_KEY}"},
                      json={"model": "gpt-test", "messages": MSG, "stream": True}) as r:
        for _line in r.iter_lines():
            break  # read one event, then hang up
    deadline = time.monotonic() + 5
    while fake.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.disconnects == 1 and fake.completed_streams == 0
    gw.flush()
    deadline = time.monotonic() + 5
    while _records(gw)[0]["status"] != 499 and time.monotonic() < deadline:
        time.sleep(0.05)
        gw.flush()
    rec = _records(gw)[0]
    assert rec["status"] == 499 and rec["error_code"] == "client_disconnected"
    assert gw.call(gw.services.budgets.status("search"))["reserved_usd"] == 0


def test_unknown_path_is_openai_shaped_404(gw: RunningGateway) -> None:
    r = httpx.get(gw.url + "/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"


def test_refusals_are_recorded(gw: RunningGateway) -> None:
    post(gw, {"model": "gpt-test", "messages": MSG}, key="sk-bad")
    post(gw, None, raw=b"{oops")
    gw.flush()
    items = _records(gw)
    assert [i["status"] for i in items[:2]] == [400, 401]
    assert items[1]["error_code"] == "invalid_api_key" and items[1]["team"] is None


def _records(gw: RunningGateway) -> list[dict[str, Any]]:
    r = httpx.get(gw.url + "/admin/requests", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    items: list[dict[str, Any]] = r.json()["items"]
    return items
