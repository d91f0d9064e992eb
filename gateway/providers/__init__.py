"""Upstream providers: one module per kind, and the table that builds them.

Adding a provider is one module implementing ``base.Provider`` and one entry in ``PROVIDERS``
(plus its kind in ``settings.ProviderKind``, which the config's ``models[].provider`` resolves
to). ``Providers`` is what the request path calls: it builds one instance per kind the config
uses (each pools its connections for every model of its kind) and routes a call to it by the
model's kind.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from gateway.providers.base import Completion, Provider, UpstreamCall
from gateway.settings import ModelSettings, ProviderKind


def _openai() -> Provider:
    from gateway.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider()


def _mock() -> Provider:
    from gateway.providers.mock import MockProvider

    return MockProvider()


def _litellm() -> Provider:
    # Imported only when a model needs it: importing litellm takes seconds.
    from gateway.providers.litellm_provider import LitellmProvider

    return LitellmProvider()


#: kind -> factory; a kind is built once, and only when a configured model uses it.
PROVIDERS: dict[ProviderKind, Callable[[], Provider]] = {
    "openai": _openai,
    "mock": _mock,
    "litellm": _litellm,
}


class Providers:
    """The providers of the configured models, by kind; a ``Provider`` itself, routing by kind."""

    def __init__(self, models: list[ModelSettings]) -> None:
        kinds = dict.fromkeys(m.kind for m in models)
        self._by_kind: dict[ProviderKind, Provider] = {k: PROVIDERS[k]() for k in kinds}
        self._by_model = {m.name: self._by_kind[m.kind] for m in models}  # one lookup a call

    async def complete(self, call: UpstreamCall) -> Completion:
        return await self._by_model[call.model.name].complete(call)

    def stream(self, call: UpstreamCall) -> AsyncGenerator[list[bytes], None]:
        return self._by_model[call.model.name].stream(call)

    async def close(self) -> None:
        for provider in self._by_kind.values():
            await provider.close()
