"""Every field of an answer that carries generated text is redacted or removed (issue 13, item 2).

The fields come from OpenAI's published response schema, as the official ``openai`` SDK types
it (generated from openai/openai-openapi): every string, byte array and string-keyed map of
``ChatCompletion``, ``ChatCompletionChunk`` and ``Completion`` is either listed below as not
generated (ids, model names...) or planted with an e-mail address by a scripted upstream. A new
field in a later SDK fails ``test_every_schema_field_is_classified`` until it is classified.
Fields of other OpenAI-compatible servers (reasoning, thinking, streamed audio) are added by
hand. Under the shipped ``default`` policy the address must reach the client in none of them,
streamed (split across two chunks) or not, in every choice of ``n: 2``; checked fields carry
``<EMAIL_ADDRESS>`` instead, and removed ones are announced in ``x-gateway-removed-fields``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

from tests.fakes.scripted_upstream import ScriptedUpstream, running_scripted_upstream
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import CLIENT_KEY, base_config

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "jane.roe@acme-mail.com"
PLANT = f"mail {EMAIL} now"
CUT = PLANT.index("@acme") + 2  # streamed texts are split inside the address
MARK = "<EMAIL_ADDRESS>"
CHOICES = 2

#: Strings of the schema that no model generates, and why.
NOT_GENERATED = {
    ".id": "the provider's answer id",
    ".model": "the upstream model's name",
    ".system_fingerprint": "the serving configuration's id",
    ".obfuscation": "random padding of stream events (in the spec, not yet in every SDK)",
    ".choices[].message.tool_calls[].id": "the provider's tool-call id",
    ".choices[].delta.tool_calls[].id": "the provider's tool-call id",
    ".choices[].message.audio.id": "the provider's audio id",
}
#: Whole subtrees that are not generated text.
NOT_GENERATED_UNDER = {
    ".moderation.": "OpenAI's moderation verdicts: model names, error codes",
    ".metadata{}": "the request's own metadata, echoed",
}
#: Fields of other OpenAI-compatible servers (not in OpenAI's schema) that carry generated text.
CHAT_EXTRAS = [
    (".choices[].message.reasoning_content", "str"),  # DeepSeek, vLLM, litellm
    (".choices[].message.reasoning", "str"),  # OpenRouter, Groq, vLLM
    (".choices[].message.thinking_blocks[].thinking", "str"),  # litellm (Anthropic thinking)
    (".choices[].message.reasoning_details[].text", "str"),  # OpenRouter
]
CHUNK_EXTRAS = [
    (".choices[].delta.reasoning_content", "str"),
    (".choices[].delta.reasoning", "str"),
    (".choices[].delta.audio.transcript", "str"),  # OpenAI audio output, streamed
    (".choices[].delta.audio.data", "str"),
    (".choices[].delta.thinking_blocks[].thinking", "str"),
    (".choices[].delta.reasoning_details[].text", "str"),
]


# --- the schema ----------------------------------------------------------------------------------


def schema_fields(model: type[BaseModel]) -> list[tuple[str, str]]:
    """``(path, kind)`` of every string (``str``), byte array (``bytes``) and string-keyed map
    (``key``) in an SDK response type; ``[]`` marks a list, ``{}`` a map's keys."""
    out: list[tuple[str, str]] = []
    _walk(model, "", out, set())
    return sorted(set(out))


def _walk(tp: Any, path: str, out: list[tuple[str, str]], seen: set[Any]) -> None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            _walk(arg, path, out, seen)
    elif origin is typing.Annotated:
        _walk(args[0], path, out, seen)
    elif origin is list:
        if args[0] is int and path.endswith(".bytes"):
            out.append((path, "bytes"))
        else:
            _walk(args[0], path + "[]", out, seen)
    elif origin is dict:
        out.append((path + "{}", "key"))
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        if (tp, path) not in seen:
            seen.add((tp, path))
            for name, info in tp.model_fields.items():
                _walk(info.annotation, f"{path}.{name}", out, seen)
    elif tp is str:
        out.append((path, "str"))


def generated(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(p, k) for p, k in fields if p not in NOT_GENERATED
            and not any(p.startswith(prefix) for prefix in NOT_GENERATED_UNDER)]


def test_every_schema_field_is_classified() -> None:
    """Each string of the schema is planted or named as not generated; the list is not empty
    and has what issue 13 names (so a broken walk cannot pass)."""
    chat = generated(schema_fields(ChatCompletion))
    chunk = generated(schema_fields(ChatCompletionChunk))
    legacy = generated(schema_fields(Completion))
    paths = {p for p, _ in chat + chunk + legacy}
    for needed in (".choices[].logprobs.content[].token", ".choices[].logprobs.content[].bytes",
                   ".choices[].logprobs.content[].top_logprobs[].token",
                   ".choices[].message.refusal", ".choices[].message.audio.transcript",
                   ".choices[].message.tool_calls[].function.arguments",
                   ".choices[].message.function_call.arguments", ".choices[].delta.refusal",
                   ".choices[].delta.content", ".choices[].logprobs.tokens[]",
                   ".choices[].logprobs.top_logprobs[]{}", ".choices[].text"):
        assert needed in paths
    assert len(paths) > 20


# --- building answers ----------------------------------------------------------------------------


def _tokens(path: str) -> list[str]:
    return path.lstrip(".").split(".")


def plant(root: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at ``path`` (every ``[]`` is one element, ``{}`` a map whose key is it)."""
    node: Any = root
    tokens = _tokens(path)
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        if token.endswith("{}"):
            name = token.removesuffix("{}")
            node[name.removesuffix("[]")] = ([{value: -0.25}] if name.endswith("[]")
                                             else {value: -0.25})
            return
        name, is_list = token.removesuffix("[]"), token.endswith("[]")
        if is_list:
            items = node.setdefault(name, [{}] if not last else [])
            if last:
                items.append(value)
                return
            node = items[0]
        elif last:
            node[name] = value
        else:
            if node.get(name) is None:
                node[name] = {}
            node = node[name]


def value_of(kind: str, text: str) -> Any:
    return list(text.encode()) if kind == "bytes" else text


def _choice_base(path: str, i: int, *, chat: bool, stream: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": i, "finish_reason": None if stream else "stop",
                              "logprobs": None}
    if not chat:
        choice["text"] = "ok"
    elif stream:
        choice["delta"] = {}
    else:
        choice["message"] = {"role": "assistant", "content": "ok"}
    return choice


def _shape(choice: dict[str, Any], index: int) -> None:
    """What a valid answer adds around a planted value: tool calls' index, id and type."""
    holder = choice.get("message") or choice.get("delta") or {}
    for call in holder.get("tool_calls") or ():
        call.setdefault("index", index)
        call.setdefault("type", "custom" if "custom" in call else "function")


def answer(path: str, kind: str, *, chat: bool) -> dict[str, Any]:
    choices = []
    for i in range(CHOICES):
        choice = _choice_base(path, i, chat=chat, stream=False)
        plant({"choices": [choice]}, path, value_of(kind, PLANT))
        _shape(choice, 0)
        choices.append(choice)
    return {"id": "chatcmpl-1", "object": "chat.completion" if chat else "text_completion",
            "created": 1, "model": "upstream-gpt", "choices": choices,
            "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}


def _split(path: str, kind: str) -> list[Any]:
    """Texts that stream piece by piece arrive split inside the address; names, byte arrays
    and map keys arrive whole."""
    if kind != "str" or path.endswith(".name") or "logprobs" in path:
        return [value_of(kind, PLANT)]
    return [PLANT[:CUT], PLANT[CUT:]]


def chunks(path: str, kind: str, *, chat: bool) -> list[dict[str, Any]]:
    obj = "chat.completion.chunk" if chat else "text_completion"

    def event(choice: dict[str, Any]) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "object": obj, "created": 1, "model": "upstream-gpt",
                "choices": [choice]}

    out = []
    for i in range(CHOICES):
        first = _choice_base(path, i, chat=chat, stream=True)
        if chat:
            first["delta"] = {"role": "assistant", "content": ""}
        out.append(event(first))
    for piece in _split(path, kind):
        for i in range(CHOICES):
            choice = _choice_base(path, i, chat=chat, stream=True)
            if not chat:
                choice["text"] = ""
            plant({"choices": [choice]}, path, piece)
            _shape(choice, 0)
            out.append(event(choice))
    for i in range(CHOICES):
        last = _choice_base(path, i, chat=chat, stream=True)
        last["finish_reason"] = "stop"
        if not chat:
            last["text"] = ""
        out.append(event(last))
    out.append({"id": "chatcmpl-1", "object": obj, "created": 1, "model": "upstream-gpt",
                "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9,
                                         "total_tokens": 14}})
    return out


# --- reading what the client got -----------------------------------------------------------------


@dataclass
class Seen:
    """What reached the client, per (choice, field path): texts in order, map keys, bytes."""

    texts: dict[tuple[int, str], list[str]]
    raw: list[bytes]

    def text(self, choice: int, path: str) -> str:
        return "".join(self.texts.get((choice, path), []))

    def leaks(self) -> list[str]:
        found = [f"choice {c} {p}: {''.join(t)!r}" for (c, p), t in self.texts.items()
                 if EMAIL in "".join(t)]
        found += ["raw bytes" for r in self.raw if EMAIL.encode() in r]
        return found


def _collect(node: Any, path: str, choice: int, seen: Seen) -> None:
    if isinstance(node, dict):
        seen.texts.setdefault((choice, path + "{}"), []).extend(str(k) for k in node)
        for key, value in node.items():
            _collect(value, f"{path}.{key}", choice, seen)
    elif isinstance(node, list):
        if node and all(isinstance(v, int) for v in node):
            seen.texts.setdefault((choice, path), []).append(
                bytes(v for v in node if 0 <= v < 256).decode(errors="replace"))
            return
        for value in node:
            _collect(value, path + "[]", choice, seen)
    elif isinstance(node, str):
        seen.texts.setdefault((choice, path), []).append(node)


def seen_in(bodies: list[bytes]) -> Seen:
    seen = Seen({}, bodies)
    for body in bodies:
        obj = orjson.loads(body)
        for i, choice in enumerate(obj.get("choices") or ()):
            _collect(choice, ".choices[]", choice.get("index", i), seen)
        for key, value in obj.items():
            if key != "choices":
                _collect(value, "." + key, -1, seen)
    return seen


def _request(chat: bool, stream: bool) -> tuple[str, dict[str, Any]]:
    if chat:
        return "/v1/chat/completions", {
            "model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "n": CHOICES,
            "logprobs": True, "top_logprobs": 2, "modalities": ["text", "audio"],
            "audio": {"voice": "alloy", "format": "wav"}, "stream": stream}
    return "/v1/completions", {"model": "gpt-test", "prompt": "hi", "n": CHOICES, "logprobs": 2,
                               "stream": stream}


def fetch(gw: RunningGateway, chat: bool, stream: bool) -> tuple[httpx.Response, Seen]:
    path, body = _request(chat, stream)
    r = httpx.post(gw.url + path, json=body, timeout=10,
                   headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 200, r.text
    if not stream:
        return r, seen_in([r.content])
    frames = [line[6:].encode() for line in r.text.splitlines()
              if line.startswith("data: {")]
    return r, seen_in(frames)


def removed(path: str, *, stream: bool) -> bool:
    """Fields that cannot be checked with the text are removed under output rules: logprobs
    (token pieces, bytes, alternatives), audio, and structured provider fields in streams."""
    if "logprobs" in path or path.endswith("audio.data"):
        return True
    return stream and ("thinking_blocks" in path or "reasoning_details" in path)


# --- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with running_scripted_upstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[RunningGateway]:
    cfg = base_config(upstream.url, tmp_path_factory.mktemp("fields"),
                      policies_dir=str(ROOT / "policies"))
    cfg["teams"][0]["policy"] = "default"
    with run_gateway(cfg) as g:
        yield g


CASES = [
    ("chat", True, False, lambda: generated(schema_fields(ChatCompletion)) + CHAT_EXTRAS),
    ("chat stream", True, True, lambda: generated(schema_fields(ChatCompletionChunk))
     + CHUNK_EXTRAS),
    ("completions", False, False, lambda: generated(schema_fields(Completion))),
    ("completions stream", False, True, lambda: generated(schema_fields(Completion))),
]


@pytest.mark.parametrize(("name", "chat", "stream", "fields"), CASES,
                         ids=[c[0] for c in CASES])
def test_no_generated_field_leaks_the_address(gw: RunningGateway, upstream: ScriptedUpstream,
                                              name: str, chat: bool, stream: bool,
                                              fields: Any) -> None:
    problems: list[str] = []
    for path, kind in fields():
        if stream:
            upstream.chunks = chunks(path, kind, chat=chat)
        else:
            upstream.answer = answer(path, kind, chat=chat)
        r, seen = fetch(gw, chat, stream)
        problems += [f"{path}: leaked in {leak}" for leak in seen.leaks()]
        announced = r.headers.get("x-gateway-removed-fields", "")
        if "logprobs" not in announced or (chat and "audio.data" not in announced):
            problems.append(f"{path}: x-gateway-removed-fields is {announced!r}")
        for i in range(CHOICES):
            got = seen.text(i, path)
            if removed(path, stream=stream):
                if got:
                    problems.append(f"{path}: choice {i} still has {got!r}, expected removed")
            elif MARK not in got:
                problems.append(f"{path}: choice {i} reads {got!r}, expected {MARK}")
    assert problems == [], f"{name}:\n" + "\n".join(problems)


# --- side texts are not answers; shadow mode removes nothing -------------------------------------

JSON_POLICY = {"output": [{"check": "json", "action": "block"},
                          {"check": "pii", "action": "redact", "entities": ["EMAIL_ADDRESS"]}],
               "stream": {"holdback_chars": 16, "step_chars": 4}}
SHADOW_POLICY = {"mode": "shadow",
                 "output": [{"check": "pii", "action": "redact", "entities": ["EMAIL_ADDRESS"]}]}
REASONING = f"The user wants JSON; I will not mention {EMAIL} at all, it is private."


@pytest.fixture
def gw_json(upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[RunningGateway]:
    pdir = tmp_path / "policies"
    pdir.mkdir()
    (pdir / "jsononly.yaml").write_text(orjson.dumps(JSON_POLICY).decode())
    (pdir / "watch.yaml").write_text(orjson.dumps(SHADOW_POLICY).decode())
    cfg = base_config(upstream.url, tmp_path, policies_dir=str(pdir))
    cfg["teams"][0]["policy"] = "jsononly"
    cfg["teams"][1]["policy"] = "watch"
    cfg["teams"][1]["models"] = ["gpt-test"]
    with run_gateway(cfg) as g:
        yield g


def _reasoning_chunks() -> list[dict[str, Any]]:
    def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    pieces = [REASONING[i:i + 7] for i in range(0, len(REASONING), 7)]
    return [event({"role": "assistant", "content": ""}),
            *[event({"reasoning_content": p}) for p in pieces],
            event({"content": '{"ok": '}), event({"content": "true}"}), event({}, "stop")]


def test_whole_answer_checks_judge_the_content_not_the_reasoning(
        gw_json: RunningGateway, upstream: ScriptedUpstream) -> None:
    """A ``json`` block rule judges the answer; the reasoning before it is not JSON and must
    not withhold it, but it is still redacted, and in a stream it is all sent before the
    content starts (its held tail is released as the content begins)."""
    upstream.answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop", "message": {
                           "role": "assistant", "content": '{"ok": true}',
                           "reasoning_content": REASONING}}]}
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "json please"}]}
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    r = httpx.post(gw_json.v1 + "/chat/completions", json=body, headers=headers, timeout=10)
    msg = r.json()["choices"][0]
    assert msg["finish_reason"] == "stop" and msg["message"]["content"] == '{"ok": true}'
    assert msg["message"]["reasoning_content"] == REASONING.replace(EMAIL, MARK)
    assert "x-gateway-removed-fields" not in r.headers  # nothing asked for was removed

    upstream.chunks = _reasoning_chunks()
    r = httpx.post(gw_json.v1 + "/chat/completions", json={**body, "stream": True},
                   headers=headers, timeout=10)
    deltas = [orjson.loads(line[6:])["choices"][0] for line in r.text.splitlines()
              if line.startswith("data: {")]
    assert deltas[-1]["finish_reason"] == "stop"
    reasoning = "".join(d["delta"].get("reasoning_content", "") for d in deltas)
    content = "".join(d["delta"].get("content") or "" for d in deltas)
    assert (reasoning, content) == (REASONING.replace(EMAIL, MARK), '{"ok": true}')
    first_content = next(i for i, d in enumerate(deltas) if d["delta"].get("content"))
    assert all("reasoning_content" not in d["delta"] for d in deltas[first_content + 1:])


def test_shadow_mode_removes_nothing(gw_json: RunningGateway, upstream: ScriptedUpstream
                                     ) -> None:
    """A shadow policy changes no answer: logprobs stay, no header."""
    upstream.answer = answer(".choices[].logprobs.content[].token", "str", chat=True)
    path, body = _request(chat=True, stream=False)
    r = httpx.post(gw_json.url + path, json=body, timeout=10,
                   headers={"authorization": "Bearer sk-test-other"})
    assert r.status_code == 200, r.text
    assert "x-gateway-removed-fields" not in r.headers
    assert r.json()["choices"][1]["logprobs"]["content"][0]["token"] == PLANT
