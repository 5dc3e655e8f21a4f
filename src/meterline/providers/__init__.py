"""Upstream providers: one module per wire format behind :class:`Provider`."""

from meterline.providers.base import Provider, ProviderDeps, ProviderFactory
from meterline.providers.registry import PROVIDER_TYPES, ProviderRegistry, register_models

__all__ = [
    "PROVIDER_TYPES",
    "Provider",
    "ProviderDeps",
    "ProviderFactory",
    "ProviderRegistry",
    "register_models",
]
