"""The ``auto`` policy: the model with the lowest expected cost per request, counting what a
failed answer costs.

For a request classified as (task type, complexity band):

1. Candidates: models of enabled providers that support the request (tools, images, JSON),
   minus models cooling down after repeated upstream failures and models *proven bad* here (the
   Wilson 95% upper bound of their success rate over at least ``min_samples`` judged answers is
   below ``threshold``); cheapest expected price first.
2. No history in this cell yet (no candidate has ``min_samples`` judged answers): the complexity
   band picks a tier (low → economy, medium → standard, high → premium) and the cheapest model
   of that tier (or the nearest tier that has one) answers.
3. Otherwise each candidate scores its expected price plus ``failure_cost`` × its estimated
   failure rate (:meth:`RouteStats.failure_rate`: the cell's own answers on top of evidence
   pooled across cells); the lowest score wins. A dearer model wins only where its measured
   success is worth the difference; with ``failure_cost`` 0 the cheapest usable model wins.
4. Exploration: with probability ``exploration`` the request goes instead to a candidate that
   could still turn out better than the pick (its score with an optimistic failure rate beats
   the pick's), the least judged of those; now and then (``_RECHECK``) to a model proven bad,
   which may have recovered since.

Why not "the cheapest model whose lower bound reaches ``threshold``"? That rule ignores how
much better a dearer model is and needs every cheap model to prove itself cell by cell; in
``benchmarks/routing_sim.py`` it kept 92.5–95.3% of the premium model's success (seeds 1–5) and
met the simulator's three targets on none of seeds 1–10. Pricing failures, with pooled evidence
and measured answer lengths, meets them on 18 of seeds 1–20 (``benchmarks/README.md``, Routing).
"""

from __future__ import annotations

import random
from collections.abc import Container
from dataclasses import dataclass

from meterline.catalog import PICO, TIERS, Catalog, ModelInfo, Tier
from meterline.routing.downgrade import supports
from meterline.routing.stats import Lengths, RouteStats, wilson_lower_bound
from meterline.settings import RoutingSettings
from meterline.types import ChatRequest

__all__ = ["Choice", "Router"]

_BAND_TIER: dict[str, Tier] = {"low": "economy", "medium": "standard", "high": "premium"}
_RECHECK = 0.1  # share of explorations that look again at a model proven bad


@dataclass(frozen=True, slots=True)
class Choice:
    model: ModelInfo
    reason: str


def _name(model: ModelInfo) -> str:
    return f"{model.provider}/{model.name}"


def _expected_cost(model: ModelInfo, prompt_chars: int, lengths: Lengths) -> float:
    """Prompt tokens from the characters sent; answer and reasoning tokens as measured for the
    cell (thinking models bill hidden reasoning tokens too)."""
    price = model.price
    thinking = 0.0
    if model.thinks_by_default:
        thinking = lengths.output * lengths.reasoning_per_output * (price.reasoning or price.output)
    return (prompt_chars // 4) * price.input + lengths.output * price.output + thinking


class Router:
    def __init__(self, catalog: Catalog, stats: RouteStats, settings: RoutingSettings,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.catalog = catalog
        self.stats = stats
        self.settings = settings
        self.rng = rng or random.Random()

    def candidates(self, request: ChatRequest, providers: Container[str],
                   min_tier: Tier | None = None, task: str = "", band: str = "",
                   ) -> list[ModelInfo]:  # fmt: skip
        """Usable models, cheapest first for answers as long as the (task, band) cell's."""
        return list(self._priced(request, providers, min_tier, task, band))

    def _priced(self, request: ChatRequest, providers: Container[str], min_tier: Tier | None,
                task: str, band: str) -> dict[ModelInfo, float]:  # fmt: skip
        """:meth:`candidates` with their expected prices (pico-USD), in the same order."""
        chars = sum(len(m.text) for m in request.messages)
        lengths = self.stats.lengths(task, band)
        floor = TIERS.index(min_tier) if min_tier else 0
        found = [m for m in self.catalog if m.provider in providers and supports(m, request)
                 and TIERS.index(m.tier) >= floor and not m.price.is_free]  # fmt: skip
        warm = [m for m in found if not self.stats.cooling(m.key)] or found
        priced = [(_expected_cost(m, chars, lengths), m.key, m) for m in warm]
        return {m: price for price, _, m in sorted(priced, key=lambda p: p[:2])}

    def choose(self, request: ChatRequest, task: str, band: str, providers: Container[str],
               min_tier: Tier | None = None) -> Choice | None:  # fmt: skip
        prices = self._priced(request, providers, min_tier, task, band)
        models = list(prices)
        if not models:
            return None
        bad: list[ModelInfo] = []
        usable: list[ModelInfo] = []
        for model in models:
            (bad if self._proven_bad(model, task, band) else usable).append(model)
        usable = usable or models
        s = self.settings
        scores = self._scores(usable, prices, task, band)
        if all(self.stats.get(task, band, m.key).total < s.min_samples for m in usable):
            pick = self._by_tier(usable, task, band)
        else:
            pick = self._cheapest_counting_failures(usable, scores, task, band)
        if self.rng.random() < s.exploration:
            other = self._explore(usable, bad, pick.model, scores, (task, band))
            if other is not None:
                seen = self.stats.get(task, band, other.key).total
                reason = f"{_name(other)}: exploring, {seen} {task} requests judged so far"
                return Choice(other, reason)
        return pick

    def _scores(self, models: list[ModelInfo], prices: dict[ModelInfo, float], task: str,
                band: str) -> dict[str, tuple[float, float]]:  # fmt: skip
        """Per model: expected cost with failures priced (pico-USD), and the same with an
        optimistic failure rate."""
        per_failure = self.settings.failure_cost * PICO
        scores = {}
        for model in models:
            price = prices[model]
            estimate = self.stats.failure_rate(task, band, model.key)
            scores[model.key] = (price + per_failure * estimate.failure,
                                 price + per_failure * estimate.optimistic())  # fmt: skip
        return scores

    def _proven_bad(self, model: ModelInfo, task: str, band: str) -> bool:
        record = self.stats.get(task, band, model.key)
        upper = 1 - wilson_lower_bound(record.total - record.successes, record.total)
        return record.total >= self.settings.min_samples and upper < self.settings.threshold

    def _cheapest_counting_failures(self, models: list[ModelInfo],
                                    scores: dict[str, tuple[float, float]], task: str,
                                    band: str) -> Choice:  # fmt: skip
        model = min(models, key=lambda m: scores[m.key][0])  # ties: the cheaper (list order)
        proof = self._proof(model, task, band)
        if model is models[0]:
            return Choice(model, f"{_name(model)}: cheapest {model.tier}, {proof}")
        cheapest = models[0]
        return Choice(model, f"{_name(model)}: {proof}; worth its price over {_name(cheapest)} "
                             f"({self._proof(cheapest, task, band)})")  # fmt: skip

    def _proof(self, model: ModelInfo, task: str, band: str) -> str:
        record = self.stats.get(task, band, model.key)
        if record.total:
            return f"{record.rate:.0%} success over {record.total} {task} requests"
        expected = 1 - self.stats.failure_rate(task, band, model.key).failure
        return f"{expected:.0%} success expected from its other records"

    def _explore(self, models: list[ModelInfo], bad: list[ModelInfo], pick: ModelInfo,
                 scores: dict[str, tuple[float, float]],
                 cell: tuple[str, str]) -> ModelInfo | None:  # fmt: skip
        """A model that might beat the pick if it is better than its record shows: the least
        judged of those; or, now and then, one proven bad, which may have recovered."""
        if bad and self.rng.random() < _RECHECK:
            return self.rng.choice(bad)
        bar = scores[pick.key][0]
        hopeful = [m for m in models if m is not pick and scores[m.key][1] < bar]
        if not hopeful:
            return None
        judged = {m.key: self.stats.get(*cell, m.key).total for m in hopeful}
        fewest = min(judged.values())
        return self.rng.choice([m for m in hopeful if judged[m.key] == fewest])

    def _by_tier(self, models: list[ModelInfo], task: str, band: str) -> Choice:
        wanted = TIERS.index(_BAND_TIER.get(band, "standard"))
        order = sorted(range(len(TIERS)), key=lambda i: (abs(i - wanted), -i))
        for index in order:
            tier_models = [m for m in models if m.tier == TIERS[index]]
            if tier_models:
                pick = tier_models[0]
                return Choice(pick, f"{_name(pick)}: no proven model for {task}/{band} yet; "
                                    f"{band} complexity -> cheapest {pick.tier}")  # fmt: skip
        return Choice(models[0], f"{_name(models[0])}: cheapest available")
