"""Fallback chains: which model to try when one fails in a way another could cure.

The same tier on another provider first (same model name preferred), then one tier up;
cheapest first within each step; never a model already tried.
"""

from __future__ import annotations

from collections.abc import Container

from meterline.catalog import TIERS, Catalog, ModelInfo
from meterline.errors import (
    ProviderError,
    UpstreamConnectionError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meterline.routing.downgrade import supports
from meterline.types import ChatRequest

__all__ = ["failure_kind", "next_in_chain"]

_KINDS: tuple[tuple[type[ProviderError], str], ...] = (
    (UpstreamRateLimited, "rate_limit"),
    (UpstreamTimeout, "timeout"),
    (UpstreamConnectionError, "connection"),
    (UpstreamUnavailable, "server_error"),
)


def failure_kind(error: ProviderError) -> str | None:
    for cls, name in _KINDS:
        if isinstance(error, cls):
            return name
    return None


def _price(model: ModelInfo) -> int:
    return model.price.input + model.price.output


def next_in_chain(
    catalog: Catalog, providers: Container[str], failed: ModelInfo, tried: set[str],
    request: ChatRequest,
) -> ModelInfo | None:  # fmt: skip
    failed_providers = {key.partition(":")[0] for key in tried} | {failed.provider}
    usable = [m for m in catalog if m.provider in providers and m.key not in tried
              and supports(m, request)]  # fmt: skip
    same_tier = [m for m in usable if m.tier == failed.tier and m.provider != failed.provider]
    if same_tier:
        # Providers that already failed this request go last.
        return min(same_tier, key=lambda m: (m.provider in failed_providers,
                                             m.name != failed.name, _price(m), m.key))  # fmt: skip
    if failed.tier in TIERS and TIERS.index(failed.tier) + 1 < len(TIERS):
        up = TIERS[TIERS.index(failed.tier) + 1]
        higher = [m for m in usable if m.tier == up]
        if higher:
            return min(higher, key=lambda m: (m.provider != failed.provider, _price(m), m.key))
    return None
