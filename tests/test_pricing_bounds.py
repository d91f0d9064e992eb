"""``ModelPrice.affordable_output``: the stream meter's shortcut agrees with ``ModelPrice.cost``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.pricing import Pricing
from gateway.providers.base import Usage
from gateway.settings import parse_settings


def _pricing(input_per_mtok: float, output_per_mtok: float) -> tuple[Pricing, object]:
    s = parse_settings({"models": [{"name": "m", "provider": "openai", "model": "m",
                                    "price": {"input_per_mtok": input_per_mtok,
                                              "output_per_mtok": output_per_mtok}}]})
    return Pricing(s), s.models[0]


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 100), st.floats(0, 200), st.integers(0, 200_000), st.integers(0, 10**9))
def test_the_bound_is_the_exact_boundary_of_cost(inp: float, out: float, prompt: int,
                                                 amount: int) -> None:
    pricing, model = _pricing(inp, out)
    t = pricing.price(model).affordable_output(prompt, amount)  # type: ignore[arg-type]
    if t >= 0:
        assert pricing.cost(model, Usage(prompt, t)) <= amount  # type: ignore[arg-type]
    else:
        assert pricing.cost(model, Usage(prompt, 0)) > amount  # type: ignore[arg-type]
    if t < 2**62:
        assert pricing.cost(model, Usage(prompt, t + 1)) > amount  # type: ignore[arg-type]
