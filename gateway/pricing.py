"""Prices: litellm's price table read offline as JSON, per-model overrides from the config.

USD per million tokens is numerically micro-dollars per token, so a cost in integer
micro-dollars is ``ceil(prompt * input_per_mtok + completion * output_per_mtok)``. Rounding up
keeps budgets conservative by at most one micro-dollar per request. The table is read from the
installed litellm package's JSON file without importing litellm (slow, and not needed here).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.budget.budgets import Estimate
from gateway.providers.base import Usage
from gateway.settings import ModelSettings, Settings
from gateway.tokens import count_messages, count_text

log = logging.getLogger("gateway.pricing")

#: Output tokens reserved when neither the request nor the model config bounds them.
FALLBACK_MAX_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input_per_mtok: float  # micro-dollars per token
    output_per_mtok: float
    source: str  # "config" | "litellm" | "unknown"


def _litellm_price_table() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / (
        "model_prices_and_context_window_backup.json")
    try:
        table = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return table if isinstance(table, dict) else {}


def _lookup(table: dict[str, Any], m: ModelSettings) -> ModelPrice | None:
    up = m.upstream_model
    for key in (up, f"{m.provider}/{up}", up.rsplit("/", 1)[-1]):
        entry = table.get(key)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return ModelPrice(float(entry["input_cost_per_token"]) * 1e6,
                              float(entry.get("output_cost_per_token", 0.0)) * 1e6, "litellm")
    return None


class Pricing:
    """Prices for every configured model, resolved once at start-up."""

    def __init__(self, settings: Settings) -> None:
        table: dict[str, Any] | None = None
        self._prices: dict[str, ModelPrice] = {}
        for m in settings.models:
            if m.price is not None:
                price = ModelPrice(m.price.input_per_mtok, m.price.output_per_mtok, "config")
            else:
                if table is None:
                    table = _litellm_price_table()
                found = _lookup(table, m)
                if found is None and m.provider != "mock":
                    log.warning("no price known for model %r (upstream %r); it is billed at 0. "
                                "Set models[].price in the config.", m.name, m.upstream_model)
                price = found or ModelPrice(0.0, 0.0, "unknown")
            self._prices[m.name] = price

    def price(self, model: ModelSettings) -> ModelPrice:
        return self._prices[model.name]

    def cost(self, model: ModelSettings, usage: Usage) -> int:
        """Actual cost in micro-dollars."""
        p = self._prices[model.name]
        return math.ceil(usage.prompt_tokens * p.input_per_mtok
                         + usage.completion_tokens * p.output_per_mtok - 1e-9)

    def affordable_output(self, model: ModelSettings, prompt_tokens: int,
                          amount_micros: int) -> int:
        """The most completion tokens whose ``cost`` with this prompt stays within
        ``amount_micros`` (-1 if not even none does; 2**62 for "any"). A stream meters against
        this instead of pricing every chunk; it is recomputed only when its hold grows."""
        def fits(t: int) -> bool:
            return self.cost(model, Usage(prompt_tokens, t)) <= amount_micros

        if not fits(0):
            return -1
        hi = 1
        while fits(hi):  # cost only grows with t: bracket the boundary, then bisect it
            if hi >= 2**62:
                return 2**62
            hi *= 2
        lo = hi // 2  # fits(lo), not fits(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return lo

    def output_cost(self, model: ModelSettings, completion_tokens: int) -> int:
        return math.ceil(completion_tokens * self._prices[model.name].output_per_mtok - 1e-9)

    def estimate(self, model: ModelSettings, endpoint: str, body: dict[str, Any]) -> Estimate:
        """The most this request may cost: counted prompt plus the output bound."""
        prompt = count_prompt(model, endpoint, body)
        if endpoint == "embeddings":
            max_out = 0
        else:
            max_out = _max_output(body) or model.default_max_tokens or FALLBACK_MAX_TOKENS
            n = body.get("n")
            if isinstance(n, int) and n > 1:
                max_out *= n
        return Estimate(prompt, max_out, self.cost(model, Usage(prompt, max_out)))


def _max_output(body: dict[str, Any]) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        v = body.get(field)
        if isinstance(v, int) and v > 0:
            return v
    return None


def count_prompt(model: ModelSettings, endpoint: str, body: dict[str, Any]) -> int:
    """Prompt tokens of a chat, legacy-completion or embeddings body, counted with tiktoken."""
    name = model.upstream_model
    if endpoint == "chat":
        return count_messages(body.get("messages") or [], name)
    key = "prompt" if endpoint == "completions" else "input"
    value = body.get(key)
    if isinstance(value, str):
        return count_text(value, name)
    if isinstance(value, list):
        total = 0
        for item in value:
            if isinstance(item, str):
                total += count_text(item, name)
            elif isinstance(item, int):
                total += 1  # a token id
            elif isinstance(item, list):
                total += len(item)  # a list of token ids
        return total
    return 0
