"""Exact cost arithmetic.

Prices are held as integer micro-dollars per million tokens, which is the same number as
pico-dollars per token; so a cost is an exact integer number of pico-dollars (``PicoUSD``)
and is only turned into a :class:`~decimal.Decimal` for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from meterline.types import Usage

__all__ = ["PICO", "PicoUSD", "Price", "cost", "parse_usd_per_million", "to_usd", "usd_str"]

PicoUSD = int
PICO = 10**12


def parse_usd_per_million(value: str | int | float) -> int:
    """``"0.075"`` (USD per 1M tokens) → 75000 (pico-USD per token); rejects sub-micro prices."""
    micro = Decimal(str(value)) * 1_000_000
    if micro != micro.to_integral_value() or micro < 0:
        raise ValueError(f"price {value!r} must be a non-negative amount with at most 6 decimals")
    return int(micro)


@dataclass(frozen=True, slots=True)
class Price:
    """Pico-USD per token for each kind of token. ``None`` means "same as input/output"."""

    input: int = 0
    output: int = 0
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None

    @property
    def is_free(self) -> bool:
        return self.input == 0 and self.output == 0


def cost(usage: Usage, price: Price) -> PicoUSD:
    """The exact cost of ``usage`` at ``price``.

    Cached and cache-write tokens are part of ``input_tokens``; reasoning tokens are part of
    ``output_tokens``; each is billed at its own rate where the catalog has one.
    """
    cache_read = price.input if price.cache_read is None else price.cache_read
    cache_write = price.input if price.cache_write is None else price.cache_write
    reasoning = price.output if price.reasoning is None else price.reasoning
    plain_in = max(usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
    plain_out = max(usage.output_tokens - usage.reasoning_tokens, 0)
    return (
        plain_in * price.input
        + usage.cached_tokens * cache_read
        + usage.cache_write_tokens * cache_write
        + plain_out * price.output
        + usage.reasoning_tokens * reasoning
    )


def to_usd(amount: PicoUSD) -> Decimal:
    return Decimal(amount) / PICO


def usd_str(amount: PicoUSD) -> str:
    """``amount`` in dollars as exact decimal text (``"0.00000825"``, ``"5"``): what
    ``f"{to_usd(amount):f}"`` gives, in integer arithmetic (for headers on every answer)."""
    whole, fraction = divmod(abs(amount), PICO)
    text = f"{whole}.{fraction:012d}".rstrip("0").rstrip(".")
    return f"-{text}" if amount < 0 else text
