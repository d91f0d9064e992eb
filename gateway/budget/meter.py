"""A stream's output metered against its budget hold, and the usage it is billed at in the end.

Output is metered *before* a chunk is sent: a chunk's UTF-8 byte length bounds its token count
from above, so the exact (tiktoken) count is only taken when that bound says the hold might be
outgrown, or every 4 KB. When the hold no longer covers the output it is topped up, by a quarter
of the original output bound at least so that a long stream asks rarely; when no top-up is
granted the stream must end (the relay ends it with ``finish_reason: "length"``).
"""

from __future__ import annotations

from gateway.budget.hold import Hold
from gateway.pricing import Estimate, ModelPrice
from gateway.providers.base import Usage
from gateway.tokens import count_text

#: Uncounted output past this many bytes is counted exactly, whatever the bound says.
MAX_UNCOUNTED_BYTES = 4096


class StreamMeter:
    def __init__(self, hold: Hold, price: ModelPrice, estimate: Estimate,
                 upstream_model: str) -> None:
        self.hold = hold
        self._price = price
        self._estimate = estimate
        self._model = upstream_model
        self._counted_tokens = 0  # exact count of text already metered
        self._pending: list[str] = []  # text received but not yet counted exactly
        #: Bytes of that text: an upper bound of its tokens (``covers`` needs it only if > 0).
        self.pending_bytes = 0
        self._affordable = (-1, 0)  # (hold amount, completion tokens that amount covers)

    def add(self, texts: list[str]) -> None:
        """Output texts received from the upstream (content or tool-call arguments)."""
        for text in texts:
            self._pending.append(text)
            self.pending_bytes += len(text.encode())

    async def covers(self) -> bool:
        """Keep the hold ahead of the output; False when the budget cannot cover it."""
        hold = self.hold
        prompt = self._estimate.prompt_tokens
        bound = self._counted_tokens + self.pending_bytes
        if self._affordable[0] != hold.amount:  # the hold grew: what it covers, priced once
            self._affordable = (hold.amount, self._price.affordable_output(prompt, hold.amount))
        if (bound <= self._affordable[1] and prompt + bound <= hold.tokens
                and self.pending_bytes < MAX_UNCOUNTED_BYTES):
            return True
        self._count_pending()
        need_usd = self._cost(self._counted_tokens) - hold.amount
        need_tok = prompt + self._counted_tokens - hold.tokens
        if need_usd <= 0 and need_tok <= 0:
            return True
        # Grow by a quarter of the original output bound at least, so a long stream asks rarely;
        # if that much is not left, take exactly what this chunk needs.
        step_tok = max(need_tok, 256, self._estimate.max_output_tokens // 4)
        step_usd = max(need_usd, self._price.output_cost(step_tok))
        if await hold.top_up(step_usd, step_tok):
            return True
        return await hold.top_up(max(0, need_usd), max(0, need_tok))

    def served(self) -> Usage:
        """The usage of what was received, for a stream whose upstream reported none (or that
        broke first): the estimated prompt and the counted output."""
        self._count_pending()
        return Usage(self._estimate.prompt_tokens, self._counted_tokens)

    def cost(self, usage: Usage) -> int:
        return self._price.cost(usage)

    def _count_pending(self) -> None:
        if self._pending:
            self._counted_tokens += count_text("".join(self._pending), self._model)
            self._pending.clear()
            self.pending_bytes = 0

    def _cost(self, completion_tokens: int) -> int:
        return self._price.cost(Usage(self._estimate.prompt_tokens, completion_tokens))
