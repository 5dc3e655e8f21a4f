"""Cheaper alternatives for a model: premium → standard → economy, among models that can serve
the request (tools, images, JSON mode), same provider first, then the cheapest."""

from __future__ import annotations

from collections.abc import Container

from meterline.catalog import TIERS, Catalog, ModelInfo
from meterline.types import ChatRequest

__all__ = ["cheaper_models", "supports"]


def supports(model: ModelInfo, request: ChatRequest) -> bool:
    if request.tools and not model.tools:
        return False
    if request.wants_vision and not model.vision:
        return False
    fmt = request.response_format
    return not (fmt is not None and fmt.type != "text" and not model.json)


def _price(model: ModelInfo) -> int:
    return model.price.input + model.price.output


def cheaper_models(
    catalog: Catalog, providers: Container[str], current: ModelInfo, request: ChatRequest
) -> list[ModelInfo]:
    """Candidates in the order to try: the next tier down first, then the one below."""
    if current.tier not in TIERS:
        return []
    lower = list(reversed(TIERS[: TIERS.index(current.tier)]))
    found: list[ModelInfo] = []
    for tier in lower:
        tier_models = [
            m for m in catalog
            if m.tier == tier and m.provider in providers and supports(m, request)
            and _price(m) < _price(current)
        ]  # fmt: skip
        tier_models.sort(key=lambda m: (m.provider != current.provider, _price(m), m.name))
        found.extend(tier_models)
    return found
