"""Policies end to end: what the provider receives, what the client gets back, what is recorded.

The fake upstream records every body it receives, so "the provider never sees a masked value"
is checked on the wire; streams are split at every character boundary of the sensitive text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import yaml

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config

EMAIL = "jane.roe@acme-mail.com"
CARD = "4111 1111 1111 1111"
AWS_KEY = "AKIAZ3MSJVTQ5KXDY7PN"
PII = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]

POLICIES: dict[str, dict[str, Any]] = {
    "guarded": {
        "input": [{"check": "pii", "action": "mask", "entities": PII},
                  {"check": "secrets", "action": "block"}],
        "output": [{"check": "pii", "action": "redact", "entities": PII},
                   {"check": "regex", "name": "codename", "patterns": [r"\bPROJECT-ORCA\b"],
                    "action": "block"},
                   {"check": "regex", "name": "internal-hosts",
                    "patterns": [r"\b[a-z0-9-]+\.corp\.example\.com\b"], "action": "flag"}],
        "stream": {"holdback_chars": 64, "step_chars": 8},
    },
    "watching": {
        "mode": "shadow",
        "input": [{"check": "pii", "action": "mask", "entities": PII},
                  {"check": "secrets", "action": "block"}],
        "output": [{"check": "pii", "action": "redact", "entities": PII}],
    },
}


def _gateway(fake: FakeOpenAI, tmp_path: Path, policy: str) -> Any:
    pdir = tmp_path / "policies"
    pdir.mkdir(exist_ok=True)
    for name, body in POLICIES.items():
        (pdir / f"{name}.yaml").write_text(yaml.safe_dump(body))
    cfg = base_config(fake.url, tmp_path, policies_dir=str(pdir))
    cfg["teams"][0]["policy"] = policy
    return run_gateway(cfg)


@pytest.fixture
def gw(fake: FakeOpenAI, tmp_path: Path) -> Iterator[RunningGateway]:
    with _gateway(fake, tmp_path, "guarded") as g:
        yield g


def sdk(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0)


def ask(gw: RunningGateway, text: str, *, stream: bool = False) -> str:
    msgs = [{"role": "user", "content": text}]
    if not stream:
        r = sdk(gw).chat.completions.create(model="gpt-test", messages=msgs)  # type: ignore[arg-type]
        return r.choices[0].message.content or ""
    chunks = list(sdk(gw).chat.completions.create(model="gpt-test", messages=msgs,  # type: ignore[arg-type]
                                                  stream=True))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def records(gw: RunningGateway) -> list[dict[str, Any]]:
    gw.flush()
    r = httpx.get(gw.url + "/admin/requests", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_masked_input_never_reaches_provider_and_is_restored(gw: RunningGateway,
                                                              fake: FakeOpenAI) -> None:
    fake.reply = "Sure, I will write to <EMAIL_ADDRESS_1> today."
    answer = ask(gw, f"Please email {EMAIL} and {EMAIL} about card {CARD}.")
    sent = orjson.dumps(fake.last).decode()
    assert EMAIL not in sent and "4111" not in sent
    content = fake.last["messages"][0]["content"]
    assert content == ("Please email <EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_1> about card "
                       "<CREDIT_CARD_1>.")
    assert answer == f"Sure, I will write to {EMAIL} today."
    rec = records(gw)[0]
    assert rec["flagged"] is False  # mask alone does not queue for review
    fired = {r["rule"]: r for r in rec["rules"]}
    assert fired["pii"]["action"] == "mask"
    assert sorted(f["label"] for f in fired["pii"]["findings"]) == [
        "CREDIT_CARD", "EMAIL_ADDRESS", "EMAIL_ADDRESS"]
    assert EMAIL not in orjson.dumps(rec).decode()


def test_placeholder_restored_when_split_at_every_boundary(gw: RunningGateway,
                                                           fake: FakeOpenAI) -> None:
    reply = "Reply to <EMAIL_ADDRESS_1> please."
    start = reply.index("<")
    end = reply.index(">") + 1
    for cut in range(start, end + 1):
        fake.pieces = [reply[:cut], reply[cut:]]
        assert ask(gw, f"write to {EMAIL}", stream=True) == f"Reply to {EMAIL} please."


def test_output_pii_redacted_when_split_at_every_boundary(gw: RunningGateway,
                                                          fake: FakeOpenAI) -> None:
    leak = "bob.smith@contoso-mail.com"
    reply = f"The owner is {leak}, ask him."
    fake.reply = reply
    assert ask(gw, "who owns it?") == "The owner is <EMAIL_ADDRESS>, ask him."
    start = reply.index(leak)
    for cut in range(start, start + len(leak) + 1):
        fake.pieces = [reply[:cut], reply[cut:]]
        got = ask(gw, "who owns it?", stream=True)
        assert got == "The owner is <EMAIL_ADDRESS>, ask him.", cut
    # Many tiny chunks too.
    fake.pieces = [reply[i:i + 3] for i in range(0, len(reply), 3)]
    assert ask(gw, "who owns it?", stream=True) == "The owner is <EMAIL_ADDRESS>, ask him."


def test_input_secret_is_blocked_before_the_provider(gw: RunningGateway,
                                                     fake: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        ask(gw, f"my key is {AWS_KEY}, debug this")
    assert e.value.code == "content_policy_violation"
    assert fake.requests == []
    rec = records(gw)[0]
    assert rec["status"] == 400 and rec["flagged"] is True
    assert rec["rules"][0]["action"] == "block"
    assert AWS_KEY not in orjson.dumps(rec).decode()
    assert gw.call(gw.services.budgets.status("search"))["reserved_usd"] == 0


def test_output_block_non_streamed(gw: RunningGateway, fake: FakeOpenAI) -> None:
    fake.reply = "The launch of PROJECT-ORCA is on Friday."
    r = sdk(gw).chat.completions.create(model="gpt-test",
                                        messages=[{"role": "user", "content": "news?"}])
    assert r.choices[0].finish_reason == "content_filter"
    assert r.choices[0].message.content == ""
    assert records(gw)[0]["flagged"] is True


def test_output_block_stream_never_leaks(gw: RunningGateway, fake: FakeOpenAI) -> None:
    reply = "Fine. The launch of PROJECT-ORCA is on Friday, and more text follows here."
    fake.reply = reply
    for size in (1, 2, 5, 13):
        fake.pieces = [reply[i:i + size] for i in range(0, len(reply), size)]
        chunks = list(sdk(gw).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "news?"}], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "ORCA" not in text and "PROJECT-" not in text
        assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_flag_queues_without_changing(gw: RunningGateway, fake: FakeOpenAI) -> None:
    fake.reply = "Use build7.corp.example.com for that."
    assert ask(gw, "where?") == "Use build7.corp.example.com for that."
    rec = records(gw)[0]
    assert rec["flagged"] is True
    flag = next(r for r in rec["rules"] if r["rule"] == "internal-hosts")
    assert flag["action"] == "flag" and flag["findings"][0]["label"] == "INTERNAL_HOSTS"


def test_shadow_mode_changes_nothing_and_records_everything(fake: FakeOpenAI,
                                                            tmp_path: Path) -> None:
    with _gateway(fake, tmp_path, "watching") as gw:
        fake.reply = f"Noted: {EMAIL}."
        answer = ask(gw, f"mail {EMAIL}, key {AWS_KEY}")
        assert answer == f"Noted: {EMAIL}."
        assert fake.last["messages"][0]["content"] == f"mail {EMAIL}, key {AWS_KEY}"
        streamed = ask(gw, f"mail {EMAIL}", stream=True)
        assert streamed == f"Noted: {EMAIL}."
        recs = records(gw)
        first = recs[1]
        assert first["status"] == 200 and first["flagged"] is True
        assert {r["rule"] for r in first["rules"]} == {"pii", "secrets"}
        assert all(r["shadow"] is True for r in first["rules"])
        assert any(r["direction"] == "output" for r in recs[0]["rules"])


def test_tool_call_arguments_are_checked(gw: RunningGateway, fake: FakeOpenAI) -> None:
    leak = "bob.smith@contoso-mail.com"
    fake.tool_args = '{"to": "' + leak + '", "body": "hello there, see you soon"}'
    expected = '{"to": "<EMAIL_ADDRESS>", "body": "hello there, see you soon"}'
    msgs = [{"role": "user", "content": "send it"}]
    r = sdk(gw).chat.completions.create(model="gpt-test", messages=msgs)  # type: ignore[arg-type]
    calls = r.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.arguments == expected  # type: ignore[union-attr]
    chunks = list(sdk(gw).chat.completions.create(model="gpt-test", messages=msgs,  # type: ignore[arg-type]
                                                  stream=True))
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices
                   for tc in c.choices[0].delta.tool_calls or () if tc.function)
    assert args == expected
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_flagged_request_reaches_the_review_queue_redacted(gw: RunningGateway,
                                                           fake: FakeOpenAI) -> None:
    fake.reply = f"Mail {EMAIL} via build7.corp.example.com now."
    assert "build7.corp.example.com" in ask(gw, f"who is {EMAIL}? card {CARD}")
    gw.flush()
    h = {"authorization": f"Bearer {ADMIN_KEY}"}
    items = httpx.get(gw.url + "/admin/flags?status=open", headers=h).json()["items"]
    assert len(items) == 1
    item = httpx.get(gw.url + f"/admin/flags/{items[0]['id']}", headers=h).json()
    assert item["team"] == "search" and item["model"] == "gpt-test"
    # Stored texts are the redacted ones: placeholders and labels, never the raw values.
    assert EMAIL not in item["prompt"] and "4111" not in item["prompt"]
    assert "<EMAIL_ADDRESS_1>" in item["prompt"] and "<CREDIT_CARD_1>" in item["prompt"]
    assert EMAIL not in item["response"] and "build7" not in item["response"]
    hosts = next(r for r in item["rules"] if r["rule"] == "internal-hosts")
    f = hosts["findings"][0]
    assert item["response"][f["start"]:f["end"]] == "<INTERNAL_HOSTS>"
    pii = next(r for r in item["rules"] if r["rule"] == "pii" and r["action"] == "mask")
    spans = {item["prompt"][x["start"]:x["end"]] for x in pii["findings"]}
    assert spans == {"<EMAIL_ADDRESS_1>", "<CREDIT_CARD_1>"}


def test_repeated_prompt_is_enforced_the_same_every_time(gw: RunningGateway,
                                                         fake: FakeOpenAI) -> None:
    """Detections of repeated input texts are remembered; enforcement must not change."""
    fake.reply = "Done for <EMAIL_ADDRESS_1>."
    for _ in range(3):
        assert ask(gw, f"Please email {EMAIL}.") == f"Done for {EMAIL}."
        assert fake.last["messages"][0]["content"] == "Please email <EMAIL_ADDRESS_1>."
    with pytest.raises(openai.BadRequestError):
        ask(gw, f"my key is {AWS_KEY}")
    with pytest.raises(openai.BadRequestError):
        ask(gw, f"my key is {AWS_KEY}")
    recs = records(gw)
    assert [r["status"] for r in recs[:2]] == [400, 400]
    assert recs[2]["rules"] == recs[3]["rules"] == recs[4]["rules"]
