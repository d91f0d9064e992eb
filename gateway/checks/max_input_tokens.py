"""Prompts longer than a token limit, counted with the model's tokenizer (tiktoken, offline)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gateway.checks.base import CheckParams, Finding, ScanContext, whole_span
from gateway.tokens import count_text


class MaxInputTokensParams(CheckParams):
    max_tokens: int = Field(gt=0)


class MaxInputTokensCheck:
    """One finding over the whole text when it has more than ``max_tokens`` tokens."""

    name: ClassVar[str] = "max_input_tokens"
    Params: ClassVar[type[MaxInputTokensParams]] = MaxInputTokensParams
    directions: ClassVar[frozenset[str]] = frozenset({"input"})
    whole_text: ClassVar[bool] = True
    max_match_chars: ClassVar[int] = 0  # whole-text verdict: no window applies

    def __init__(self, params: MaxInputTokensParams) -> None:
        self.params = params

    def prefilter(self, text: str) -> bool:
        # A token is at least one UTF-8 byte (at most 4 per character): shorter texts cannot
        # exceed the limit.
        return len(text) * 4 > self.params.max_tokens

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        if not self.prefilter(text):
            return []
        model = str(ctx.request.get("model") or "")
        if count_text(text, model) <= self.params.max_tokens:
            return []
        return whole_span("MAX_INPUT_TOKENS", text)
