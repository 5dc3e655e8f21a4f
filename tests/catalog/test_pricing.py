"""Exact cost arithmetic from the catalog's prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterline.catalog import Catalog, Price, cost, parse_usd_per_million, to_usd, usd_str
from meterline.types import Usage


def test_prices_parse_to_exact_pico_dollars_per_token() -> None:
    assert parse_usd_per_million("0.075") == 75_000
    assert parse_usd_per_million("15") == 15_000_000
    with pytest.raises(ValueError):
        parse_usd_per_million("0.0000001")
    with pytest.raises(ValueError):
        parse_usd_per_million("-1")


def test_cost_bills_each_kind_of_token_at_its_own_rate() -> None:
    price = Price(input=3_000_000, output=15_000_000, cache_read=300_000, cache_write=3_750_000,
                  reasoning=None)  # fmt: skip
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cached_tokens=6_000,
                  cache_write_tokens=1_000, reasoning_tokens=500)  # fmt: skip
    # 3,000 plain input, 6,000 cache reads, 1,000 cache writes, 1,500 + 500 output at $15/M
    expected = Decimal("0.009") + Decimal("0.0018") + Decimal("0.00375") + Decimal("0.03")
    assert to_usd(cost(usage, price)) == expected


def test_catalog_prices_are_what_the_provider_bills() -> None:
    catalog = Catalog.builtin()
    mini = catalog.get("openai", "gpt-4o-mini")
    assert mini is not None and mini.tier == "economy"
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=500_000)
    assert to_usd(cost(usage, mini.price)) == Decimal("0.15") / 2 + Decimal("0.075") / 2 + Decimal(
        "0.60"
    )
    haiku = catalog.get("anthropic", "claude-haiku-4-5")
    assert haiku is not None and haiku.price.cache_write == 1_250_000


def test_every_catalog_model_is_complete() -> None:
    catalog = Catalog.builtin()
    assert len(catalog) >= 15
    for model in catalog:
        assert model.tier in ("economy", "standard", "premium")
        assert model.price.input > 0 and model.price.output >= model.price.input
        assert model.context_window >= 8_000


@pytest.mark.parametrize(
    "amount",
    [0, 1, 8_250_000, 10**12, 5 * 10**12, 123_456_789_012_345, 10**30 + 7, -1, -2 * 10**12],
)
def test_usd_str_is_the_exact_decimal_text(amount: int) -> None:
    text = usd_str(amount)
    whole, _, fraction = text.removeprefix("-").partition(".")
    value = int(whole) * 10**12 + int(fraction.ljust(12, "0"))
    assert (-value if text.startswith("-") else value) == amount  # exact, however large
    assert not text.endswith(".") and not (fraction and fraction.endswith("0"))
    if abs(amount) < 10**27:  # within Decimal's 28 digits: the text it prints
        assert text == f"{to_usd(amount):f}"
