"""Provider types by name, and the set of providers one gateway runs with."""

from __future__ import annotations

import logging
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import replace

from meterline.catalog import TIERS, Catalog, ModelInfo, Price, Tier, price_from_mapping
from meterline.providers.anthropic import AnthropicProvider
from meterline.providers.base import Provider, ProviderDeps, ProviderFactory
from meterline.providers.cli import CLI_PROVIDER_TYPES
from meterline.providers.compatible import CompatibleProvider
from meterline.providers.gemini import GeminiProvider
from meterline.providers.ollama import OllamaProvider
from meterline.providers.openai import OpenAIProvider
from meterline.settings import ModelEntry, ProviderSettings
from meterline.types import ChatRequest

__all__ = ["PROVIDER_TYPES", "ProviderRegistry", "can_take", "register_models"]

log = logging.getLogger("meterline.providers")

PROVIDER_TYPES: Mapping[str, ProviderFactory] = {
    "openai": OpenAIProvider,
    "openai-compatible": CompatibleProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "ollama": OllamaProvider,
    **CLI_PROVIDER_TYPES,  # claude-cli, codex-cli, gemini-cli
}


def _model_info(provider: str, entry: ModelEntry, base: ModelInfo | None) -> ModelInfo:
    defaults = base or ModelInfo(provider=provider, name=entry.name)
    tier: Tier = defaults.tier
    for known in TIERS:
        if entry.tier == known:
            tier = known
    return replace(
        defaults,
        provider=provider,
        name=entry.name,
        tier=tier,
        context_window=entry.context_window or defaults.context_window,
        max_output=entry.max_output or defaults.max_output,
        tools=defaults.tools if entry.tools is None else entry.tools,
        vision=defaults.vision if entry.vision is None else entry.vision,
        json=defaults.json if entry.json is None else entry.json,
        price=price_from_mapping(entry.price) if entry.price is not None else defaults.price,
    )


def register_models(catalog: Catalog, providers: Iterable[ProviderSettings]) -> None:
    """Add each provider's configured models to the catalog; missing fields come from a
    built-in model of the same name (so ``gpt-4o-mini`` on a proxy keeps its capabilities).
    Coding-CLI providers bill through the CLI's own plan, so their models cost $0 here unless
    the config gives a price."""
    for settings in providers:
        for entry in settings.models:
            same = catalog.get(settings.name, entry.name) or next(
                iter(catalog.named(entry.name)), None
            )
            info = _model_info(settings.name, entry, same)
            if settings.type.endswith("-cli") and entry.price is None:
                info = replace(info, price=Price())
            catalog.add(info)


def can_take(provider: Provider, request: ChatRequest) -> bool:
    """Every provider can take a request it can translate; one holding what only its own wire
    format carries (``ChatRequest.opaque``) only a provider speaking that format."""
    return request.opaque is None or provider.wire == request.wire


class ProviderRegistry:
    """The enabled providers, by name, in configuration order."""

    def __init__(self, providers: Iterable[Provider] = ()) -> None:
        self._providers = {p.name: p for p in providers}

    @classmethod
    def build(
        cls,
        settings: Iterable[ProviderSettings],
        deps: ProviderDeps,
        types: Mapping[str, ProviderFactory] = PROVIDER_TYPES,
    ) -> ProviderRegistry:
        built = []
        for entry in settings:
            if not entry.enabled:
                continue
            factory = types.get(entry.type)
            if factory is None:
                log.warning(
                    "provider %r has type %r, which this version cannot serve; skipped",
                    entry.name,
                    entry.type,
                )
                continue
            built.append(factory(entry, deps))
        return cls(built)

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def able(self, request: ChatRequest) -> Container[str]:
        """The providers that can take ``request`` (:func:`can_take`)."""
        if request.opaque is None:
            return self
        return frozenset(p.name for p in self._providers.values() if can_take(p, request))

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
