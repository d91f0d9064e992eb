"""Every credential format through a real gateway: the provider never sees one under ``mask``.

An in-process gateway in front of the fake upstream, which records every body it receives. Per
format: the credential goes in a prompt (masked on the way out, restored in the answer, whole and
with the placeholder split across SSE events), and comes back from the provider in a streamed
answer split across SSE events (redacted before the client sees any of it). Documentation examples
(``AKIAIOSFODNN7EXAMPLE``) are masked too, and pass a ``block`` rule without refusing the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import yaml

from tests.checks.credentials import CREDENTIALS, in_context
from tests.fakes.openai_upstream import FakeOpenAI, running_fake_openai
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import CLIENT_KEY, base_config

DEFAULT_POLICY = Path(__file__).parents[1] / "policies" / "default.yaml"
EXAMPLES = [
    ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("GITHUB_TOKEN", "ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE1"),
    ("SLACK_TOKEN", "xoxb-123456789012-1234567890123-EXAMPLEexampleEXAMPLE1234"),
]
FORMATS = CREDENTIALS + EXAMPLES


def _policies() -> dict[str, dict[str, Any]]:
    stream = yaml.safe_load(DEFAULT_POLICY.read_text())["stream"]
    return {
        "masking": {
            "input": [{"check": "secrets", "action": "mask"}],
            "output": [{"check": "secrets", "action": "redact"}],
            "stream": stream,
        },
        "blocking": {"input": [{"check": "secrets", "action": "block"}]},
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_fake_openai() as f:
        yield f


@pytest.fixture(scope="module")
def gws(
    fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningGateway]]:
    tmp = tmp_path_factory.mktemp("leak")
    pdir = tmp / "policies"
    pdir.mkdir()
    for name, body in _policies().items():
        (pdir / f"{name}.yaml").write_text(yaml.safe_dump(body))
    out: dict[str, RunningGateway] = {}
    with run_gateway(_config(fake, tmp, pdir, "masking")) as masking:
        out["masking"] = masking
        with run_gateway(_config(fake, tmp / "b", pdir, "blocking")) as blocking:
            out["blocking"] = blocking
            yield out


def _config(fake: FakeOpenAI, tmp: Path, pdir: Path, policy: str) -> dict[str, Any]:
    tmp.mkdir(exist_ok=True)
    cfg = base_config(fake.url, tmp, policies_dir=str(pdir))
    cfg["teams"][0]["policy"] = policy
    return cfg


def _ask(gw: RunningGateway, text: str, *, stream: bool) -> str:
    client = openai.OpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0)
    msgs: Any = [{"role": "user", "content": text}]
    if not stream:
        r = client.chat.completions.create(model="gpt-test", messages=msgs)
        return r.choices[0].message.content or ""
    chunks = client.chat.completions.create(model="gpt-test", messages=msgs, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize(("label", "value"), FORMATS, ids=[f"{lab}-{v[:8]}" for lab, v in FORMATS])
def test_masked_credential_never_reaches_the_provider(
    gws: dict[str, RunningGateway], fake: FakeOpenAI, label: str, value: str
) -> None:
    gw = gws["masking"]
    secret = in_context(label, value)
    placeholder = f"<{label}_1>"
    reply = f"I stored {placeholder} in the vault."
    restored = reply.replace(placeholder, value)
    fake.reply, fake.pieces = reply, None
    prompt = f"Please rotate this credential:\n{secret}\nand tell me when done."
    assert _ask(gw, prompt, stream=False) == restored
    sent = orjson.dumps(fake.last).decode()
    assert value not in sent and placeholder in sent
    # The placeholder split across SSE events of a streamed answer.
    cut = reply.index(placeholder) + len(placeholder) // 2
    fake.pieces = [reply[:cut], reply[cut:]]
    assert _ask(gw, prompt, stream=True) == restored
    assert value not in orjson.dumps(fake.last).decode()


@pytest.mark.parametrize(("label", "value"), FORMATS, ids=[f"{lab}-{v[:8]}" for lab, v in FORMATS])
def test_credential_in_a_streamed_answer_never_reaches_the_client(
    gws: dict[str, RunningGateway], fake: FakeOpenAI, label: str, value: str
) -> None:
    secret = in_context(label, value)
    reply = f"Found it in the config:\n{secret}\nRotate it soon."
    expected = reply.replace(value, f"<{label}>")
    fake.reply = reply
    # Split across SSE events of 7 characters: every token is cut several times.
    fake.pieces = [reply[i : i + 7] for i in range(0, len(reply), 7)]
    assert _ask(gws["masking"], "where is the key?", stream=True) == expected
    fake.pieces = None
    assert _ask(gws["masking"], "where is the key?", stream=False) == expected


def test_block_refuses_real_credentials_and_passes_documentation_examples(
    gws: dict[str, RunningGateway], fake: FakeOpenAI
) -> None:
    gw = gws["blocking"]
    fake.reply, fake.pieces = "ok", None
    for label, value in EXAMPLES:
        assert _ask(gw, f"The docs say {value}; what is it?", stream=False) == "ok"
        assert value in orjson.dumps(fake.last).decode(), label
    for label, value in CREDENTIALS:
        with pytest.raises(openai.BadRequestError) as e:
            _ask(gw, f"debug: {in_context(label, value)}", stream=False)
        assert e.value.code == "content_policy_violation", label
