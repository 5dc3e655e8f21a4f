"""Model catalog and exact pricing."""

from meterline.catalog.catalog import TIERS, Catalog, ModelInfo, Tier, price_from_mapping
from meterline.catalog.pricing import (
    PICO,
    PicoUSD,
    Price,
    cost,
    parse_usd_per_million,
    to_usd,
    usd_str,
)

__all__ = [
    "PICO",
    "TIERS",
    "Catalog",
    "ModelInfo",
    "PicoUSD",
    "Price",
    "Tier",
    "cost",
    "parse_usd_per_million",
    "price_from_mapping",
    "to_usd",
    "usd_str",
]
