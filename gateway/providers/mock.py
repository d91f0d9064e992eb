"""The built-in offline ``mock`` model: it echoes, with honest usage figures.

It lets ``make run`` answer ``curl`` and the ``openai`` SDK with no network and no keys. Usage is
counted with tiktoken the same way the gateway counts prompts, so budgets and spend reports show
real-looking numbers. Embeddings are deterministic unit vectors derived from a hash of the text.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.providers.base import Completion, UpstreamCall, Usage
from gateway.tokens import count_chat, count_text

EMBEDDING_DIMS = 16


def _texts(messages: list[Any]) -> list[str]:
    """The texts of chat messages as the mock model reads them (it stands in for an upstream,
    so it reads its input itself): content, text parts, tool-call names and arguments."""
    out: list[str] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p["text"] for p in content
                    if isinstance(p, dict) and isinstance(p.get("text"), str)]
        for call in m.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                out += [str(fn.get("name") or ""), str(fn.get("arguments") or "")]
    return out


def _reply_text(call: UpstreamCall) -> str:
    if call.endpoint == "completions":
        prompt = call.body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
    else:
        users = [m for m in call.body.get("messages") or [] if isinstance(m, dict)
                 and m.get("role") == "user"]
        texts = _texts(users[-1:])
        text = " ".join(texts)
    reply = f"Echo: {text}" if text else "Echo."
    limit = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
    if isinstance(limit, int) and limit > 0:
        words = reply.split(" ")
        # A rough cut by words keeps the reply within max_tokens for the usual English text.
        reply = " ".join(words[: max(1, limit // 2)])
    return reply


def _embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [struct.unpack_from(">h", digest, 2 * i)[0] for i in range(EMBEDDING_DIMS)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


class MockProvider:
    async def close(self) -> None:
        return None

    async def complete(self, call: UpstreamCall) -> Completion:
        model = call.body.get("model", call.model.upstream_model)
        if call.endpoint == "embeddings":
            return self._embeddings(call, model)
        reply = _reply_text(call)
        usage = self._usage(call, reply)
        created = int(time.time())
        if call.endpoint == "completions":
            data: dict[str, Any] = {
                "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": created, "model": model,
                "choices": [{"index": 0, "text": reply, "logprobs": None,
                             "finish_reason": "stop"}],
            }
        else:
            data = {
                "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "logprobs": None, "finish_reason": "stop"}],
            }
        data["usage"] = {"prompt_tokens": usage.prompt_tokens,
                         "completion_tokens": usage.completion_tokens,
                         "total_tokens": usage.total_tokens}
        return Completion(data, usage, None)

    def _usage(self, call: UpstreamCall, reply: str) -> Usage:
        name = call.model.upstream_model
        if call.endpoint == "completions":
            prompt = call.body.get("prompt")
            pt = count_text(prompt if isinstance(prompt, str) else str(prompt), name)
        else:
            messages = call.body.get("messages") or []
            pt = count_chat(_texts(messages), len(messages), name)
        return Usage(pt, count_text(reply, name))

    def _embeddings(self, call: UpstreamCall, model: str) -> Completion:
        value = call.body.get("input")
        inputs = [value] if isinstance(value, str) else list(value or [])
        texts = [x if isinstance(x, str) else str(x) for x in inputs]
        pt = sum(count_text(t, call.model.upstream_model) for t in texts)
        data = {
            "object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": _embedding(t)}
                     for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": pt, "total_tokens": pt},
        }
        return Completion(data, Usage(pt, 0), None)

    async def stream(self, call: UpstreamCall) -> AsyncGenerator[list[bytes], None]:
        reply = _reply_text(call)
        usage = self._usage(call, reply)
        model = call.body.get("model", call.model.upstream_model)
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        chat = call.endpoint == "chat"

        def chunk(text: str | None, finish: str | None, first: bool = False) -> bytes:
            if chat:
                delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
                if text is not None:
                    delta["content"] = text
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
                obj = "chat.completion.chunk"
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": finish}
                obj = "text_completion"
            return orjson.dumps({"id": cid, "object": obj, "created": created, "model": model,
                                 "choices": [choice]})

        if chat:
            yield [chunk(None, None, first=True)]
        words = reply.split(" ")
        for i, w in enumerate(words):
            yield [chunk(w if i == 0 else " " + w, None)]
            await asyncio.sleep(0)
        yield [chunk(None, "stop")]
        opts = call.body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage"):
            yield [orjson.dumps({"id": cid, "object": "chat.completion.chunk" if chat
                                 else "text_completion", "created": created, "model": model,
                                 "choices": [], "usage": {
                                     "prompt_tokens": usage.prompt_tokens,
                                     "completion_tokens": usage.completion_tokens,
                                     "total_tokens": usage.total_tokens}})]
