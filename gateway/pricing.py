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

from gateway.providers.base import Usage
from gateway.settings import ModelSettings, Settings

log = logging.getLogger("gateway.pricing")

#: Output tokens reserved when neither the request nor the model config bounds them.
FALLBACK_MAX_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a request may cost at most, before it is sent: what its budget hold reserves."""

    prompt_tokens: int
    max_output_tokens: int
    cost_micros: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.max_output_tokens


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices, and the sums a request and a stream need of them."""

    input_per_mtok: float  # micro-dollars per token
    output_per_mtok: float
    source: str  # "config" | "litellm" | "unknown"

    def cost(self, usage: Usage) -> int:
        """Actual cost in micro-dollars."""
        return math.ceil(usage.prompt_tokens * self.input_per_mtok
                         + usage.completion_tokens * self.output_per_mtok - 1e-9)

    def output_cost(self, completion_tokens: int) -> int:
        return math.ceil(completion_tokens * self.output_per_mtok - 1e-9)

    def affordable_output(self, prompt_tokens: int, amount_micros: int) -> int:
        """The most completion tokens whose ``cost`` with this prompt stays within
        ``amount_micros`` (-1 if not even none does; 2**62 for "any"). A stream meters against
        this instead of pricing every chunk; it is recomputed only when its hold grows."""
        def fits(t: int) -> bool:
            return self.cost(Usage(prompt_tokens, t)) <= amount_micros

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
        return self._prices[model.name].cost(usage)

    def estimate(self, model: ModelSettings, prompt_tokens: int, max_output: int | None,
                 choices: int = 1) -> Estimate:
        """The most a request may cost: its counted prompt plus its output bound (the model's
        default when the request sets none) for each answer it asks for."""
        max_out = (max_output if max_output is not None
                   else model.default_max_tokens or FALLBACK_MAX_TOKENS) * choices
        return Estimate(prompt_tokens, max_out,
                        self._prices[model.name].cost(Usage(prompt_tokens, max_out)))
