"""The ``auto`` policy: the cheapest model that has proven itself on this kind of task.

For a request classified as (task type, complexity band):

1. Candidates: models of enabled providers that support the request (tools, images, JSON),
   minus models cooling down after repeated failures; cheapest expected cost first.
2. Exploration: with a small probability, a cheaper candidate that has not proven itself gets
   the request, so new or recovering models earn a record: the least-judged of those not proven
   bad, and now and then (``_RECHECK``) one proven bad, which may have recovered since.
3. The first candidate whose success rate is proven — the Wilson 95% lower bound over at least
   ``min_samples`` judged answers is ``threshold`` or more — wins.
4. No proven model: the complexity band picks a tier (low → economy, medium → standard, high →
   premium) and the cheapest model of that tier (or the nearest tier that has one) that is not
   proven bad answers.
"""

from __future__ import annotations

import random
from collections.abc import Container
from dataclasses import dataclass

from meterline.catalog import TIERS, Catalog, ModelInfo, Tier
from meterline.routing.downgrade import supports
from meterline.routing.stats import RouteStats, wilson_lower_bound
from meterline.settings import RoutingSettings
from meterline.types import ChatRequest

__all__ = ["Choice", "Router"]

_BAND_TIER: dict[str, Tier] = {"low": "economy", "medium": "standard", "high": "premium"}
_EXPECTED_OUTPUT = 500
_EXPECTED_REASONING = 1000  # thinking models bill hidden reasoning tokens too
_RECHECK = 0.1  # share of explorations that look again at a model proven bad


@dataclass(frozen=True, slots=True)
class Choice:
    model: ModelInfo
    reason: str


def _name(model: ModelInfo) -> str:
    return f"{model.provider}/{model.name}"


def _expected_cost(model: ModelInfo, prompt_chars: int) -> int:
    price = model.price
    thinks = model.thinks_by_default
    thinking = _EXPECTED_REASONING * (price.reasoning or price.output) if thinks else 0
    return (prompt_chars // 4) * price.input + _EXPECTED_OUTPUT * price.output + thinking


class Router:
    def __init__(self, catalog: Catalog, stats: RouteStats, settings: RoutingSettings,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.catalog = catalog
        self.stats = stats
        self.settings = settings
        self.rng = rng or random.Random()

    def candidates(self, request: ChatRequest, providers: Container[str],
                   min_tier: Tier | None = None) -> list[ModelInfo]:  # fmt: skip
        chars = sum(len(m.text) for m in request.messages)
        floor = TIERS.index(min_tier) if min_tier else 0
        found = [m for m in self.catalog if m.provider in providers and supports(m, request)
                 and TIERS.index(m.tier) >= floor and not m.price.is_free]  # fmt: skip
        warm = [m for m in found if not self.stats.cooling(m.key)] or found
        return sorted(warm, key=lambda m: (_expected_cost(m, chars), m.key))

    def choose(self, request: ChatRequest, task: str, band: str, providers: Container[str],
               min_tier: Tier | None = None) -> Choice | None:  # fmt: skip
        models = self.candidates(request, providers, min_tier)
        if not models:
            return None
        pick = self._exploit(models, task, band)
        if self.rng.random() < self.settings.exploration:
            other = self._explore(models, pick.model, task, band)
            if other is not None:
                seen = self.stats.get(task, band, other.key).total
                reason = f"{_name(other)}: exploring, {seen} {task} requests judged so far"
                return Choice(other, reason)
        return pick

    def _proven(self, model: ModelInfo, task: str, band: str) -> bool:
        record = self.stats.get(task, band, model.key)
        s = self.settings
        return record.total >= s.min_samples and record.lower_bound >= s.threshold

    def _proven_bad(self, model: ModelInfo, task: str, band: str) -> bool:
        record = self.stats.get(task, band, model.key)
        upper = 1 - wilson_lower_bound(record.total - record.successes, record.total)
        return record.total >= self.settings.min_samples and upper < self.settings.threshold

    def _exploit(self, models: list[ModelInfo], task: str, band: str) -> Choice:
        for model in models:
            if self._proven(model, task, band):
                record = self.stats.get(task, band, model.key)
                proof = f"{record.rate:.0%} success over {record.total} {task} requests"
                return Choice(model, f"{_name(model)}: cheapest {model.tier}, {proof}")
        return self._by_tier(models, task, band)

    def _explore(self, models: list[ModelInfo], pick: ModelInfo, task: str,
                 band: str) -> ModelInfo | None:  # fmt: skip
        """A model cheaper than the pick that has not proven itself (yet, or again): the
        least-judged of those still open, or, now and then, one proven bad."""
        open_: list[ModelInfo] = []
        bad: list[ModelInfo] = []
        for model in models[: models.index(pick)] if pick in models else []:
            if not self._proven(model, task, band):
                (bad if self._proven_bad(model, task, band) else open_).append(model)
        if bad and (not open_ or self.rng.random() < _RECHECK):
            return self.rng.choice(bad)
        if not open_:
            return None
        judged = {m.key: self.stats.get(task, band, m.key).total for m in open_}
        fewest = min(judged.values())
        return self.rng.choice([m for m in open_ if judged[m.key] == fewest])

    def _by_tier(self, models: list[ModelInfo], task: str, band: str) -> Choice:
        usable = [m for m in models if not self._proven_bad(m, task, band)] or models
        wanted = TIERS.index(_BAND_TIER.get(band, "standard"))
        order = sorted(range(len(TIERS)), key=lambda i: (abs(i - wanted), -i))
        for index in order:
            tier_models = [m for m in usable if m.tier == TIERS[index]]
            if tier_models:
                pick = tier_models[0]
                return Choice(pick, f"{_name(pick)}: no proven model for {task}/{band} yet; "
                                    f"{band} complexity -> cheapest {pick.tier}")  # fmt: skip
        return Choice(usable[0], f"{_name(usable[0])}: cheapest available")
