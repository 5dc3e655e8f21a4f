"""The model catalog: which models exist, their tier, capabilities and prices."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from meterline.catalog.pricing import Price, parse_usd_per_million

__all__ = ["TIERS", "Catalog", "ModelInfo", "Tier", "price_from_mapping"]

Tier = Literal["economy", "standard", "premium"]
TIERS: tuple[Tier, ...] = ("economy", "standard", "premium")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str
    name: str
    tier: Tier = "standard"
    context_window: int = 128_000
    max_output: int = 4096
    tools: bool = True
    vision: bool = False
    json: bool = True
    reasoning: bool = False
    price: Price = field(default_factory=Price)

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def thinks_by_default(self) -> bool:
        """Bills hidden reasoning tokens on every request: OpenAI's reasoning models and Gemini
        2.5 do; Claude reasons only when a request turns extended thinking on."""
        return self.reasoning and self.provider != "anthropic"


def price_from_mapping(raw: Mapping[str, Any]) -> Price:
    def opt(name: str) -> int | None:
        return None if raw.get(name) is None else parse_usd_per_million(raw[name])

    return Price(
        input=parse_usd_per_million(raw.get("input", 0)),
        output=parse_usd_per_million(raw.get("output", 0)),
        cache_read=opt("cache_read"),
        cache_write=opt("cache_write"),
        reasoning=opt("reasoning"),
    )


def _model_from_mapping(raw: Mapping[str, Any]) -> ModelInfo:
    fields = {k: v for k, v in raw.items() if k != "price"}
    return ModelInfo(**fields, price=price_from_mapping(raw.get("price", {})))


class Catalog:
    """Models by ``provider:name``; bare names resolve to every provider that serves them."""

    def __init__(self, models: Iterable[ModelInfo] = ()) -> None:
        self._models: dict[str, ModelInfo] = {}
        self._by_name: dict[str, list[ModelInfo]] = {}
        for model in models:
            self.add(model)

    @classmethod
    def builtin(cls) -> Catalog:
        data = importlib.resources.files("meterline.catalog").joinpath("models.json").read_bytes()
        return cls(_model_from_mapping(m) for m in orjson.loads(data)["models"])

    def add(self, model: ModelInfo) -> None:
        """Add or replace a model (config entries override the built-in data)."""
        old = self._models.get(model.key)
        if old is not None:
            self._by_name[old.name].remove(old)
        self._models[model.key] = model
        self._by_name.setdefault(model.name, []).append(model)

    def get(self, provider: str, name: str) -> ModelInfo | None:
        return self._models.get(f"{provider}:{name}")

    def named(self, name: str) -> list[ModelInfo]:
        return list(self._by_name.get(name, ()))

    def for_provider(self, provider: str) -> list[ModelInfo]:
        return [m for m in self._models.values() if m.provider == provider]

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)
