"""The tables that name the pluggable parts agree with the settings that validate the config."""

from __future__ import annotations

from typing import get_args

from gateway.providers import PROVIDERS
from gateway.settings import BUDGET_SCHEMES, LOG_SCHEMES, ProviderKind, parse_settings
from gateway.stores.backends import BUDGET_BACKENDS, LOG_BACKENDS, OPS_BACKENDS


def test_every_accepted_store_scheme_has_a_backend() -> None:
    assert set(BUDGET_BACKENDS) == set(BUDGET_SCHEMES)
    assert set(LOG_BACKENDS) == set(LOG_SCHEMES) == set(OPS_BACKENDS)


def test_every_provider_kind_has_a_factory() -> None:
    assert set(PROVIDERS) == set(get_args(ProviderKind))


def test_a_model_resolves_to_its_kind() -> None:
    s = parse_settings({"models": [{"name": "a", "provider": "openai"},
                                   {"name": "b", "provider": "mock"},
                                   {"name": "c", "provider": "anthropic"}]})
    assert [m.kind for m in s.models] == ["openai", "mock", "litellm"]


def test_redis_on_a_unix_socket_is_accepted() -> None:
    # The README documents unix:///path.sock?db=N; the validator used to refuse it.
    s = parse_settings({"stores": {"budgets": "unix:///tmp/redis.sock?db=2"}})
    assert s.stores.budgets.startswith("unix://")
