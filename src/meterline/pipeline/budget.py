"""Budget stage: reserve the request's worst-case cost under every rule it falls under.

Below ``downgrade_at`` (80%) of every budget: as routed. At or above it: the route moves to a
cheaper tier (reason in the headers). A reservation that does not fit tries the cheaper models
in turn, and is refused with 429 naming the budget when none fits. After the answer the
reservation is settled with the actual cost (zero on error).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from meterline.accounting.counters import Hold, Level
from meterline.accounting.estimate import worst_case_cost
from meterline.accounting.ledger import Ledger, Reservation
from meterline.accounting.rules import Rule, usd_text
from meterline.catalog import Catalog, ModelInfo, usd_str
from meterline.errors import BreakerOpen, BudgetExceeded, RateLimited
from meterline.pipeline.context import Outcome, RequestContext, Route
from meterline.providers import ProviderRegistry
from meterline.routing import cheaper_models

__all__ = ["BudgetStage"]


@dataclass(slots=True)
class _Read:
    """The rules a request falls under, their counters' holds and their levels, read once."""

    rules: list[Rule]
    holds: list[Hold]
    levels: list[Level]


def _refusal(rule: Rule, detail: str) -> RateLimited:
    cls = BudgetExceeded if rule.kind == "budget" else BreakerOpen
    return cls(f"{rule.name} {detail}")


class BudgetStage:
    def __init__(
        self, ledger: Ledger, catalog: Catalog, providers: ProviderRegistry, downgrade_at: float
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.providers = providers
        self.downgrade_at = downgrade_at

    async def __call__(self, ctx: RequestContext) -> None:
        assert ctx.route is not None, "the budget stage runs after routing"
        rules = self.ledger.rules_for(ctx.principal, ctx.key, ctx.route.provider)
        if not rules:
            return None
        holds = self.ledger.holds(rules)
        levels = await self.ledger.levels(rules, holds)
        ratio = self._check_levels(rules, levels)
        candidates = [ctx.route.model]
        if ratio >= self.downgrade_at:
            candidates = self._cheaper(ctx) or candidates
        self._hold(ctx, await self._reserve(ctx, candidates, ratio, _Read(rules, holds, levels)))
        ctx.on_complete(self._settle)
        return None

    def _hold(self, ctx: RequestContext, reservation: Reservation) -> None:
        ctx.reservation = reservation
        ctx.budget_remaining = reservation.remaining
        if reservation.remaining is not None:
            left = usd_str(max(0, reservation.remaining))
            ctx.response_headers["x-meterline-budget-remaining-usd"] = left

    async def switch(self, ctx: RequestContext, model: ModelInfo) -> None:
        """Move the reservation to ``model`` for a fallback attempt: the failed attempt's hold is
        released and the new model must fit every rule on its own, or the fallback is refused."""
        if ctx.reservation is not None:
            self.ledger.settle_later(ctx.reservation, 0)
            ctx.reservation = None
        rules = self.ledger.rules_for(ctx.principal, ctx.key, model.provider)
        if not rules:
            return
        result = await self.ledger.reserve(rules, worst_case_cost(ctx.request, model))
        if not isinstance(result, Reservation):
            raise _refusal(result, f"has no room for a fallback to {model.key}")
        self._hold(ctx, result)

    def _check_levels(self, rules: list[Rule], levels: list[Level]) -> float:
        """The highest share used of any budget; refuse outright at 100%."""
        ratio = 0.0
        for rule, level in zip(rules, levels, strict=True):
            if rule.kind == "alert" or rule.limit <= 0:
                continue
            used = level.spent + level.reserved
            if used >= rule.limit:
                self.ledger.refused_later(rule)
                raise _refusal(rule, f"is used up ({usd_text(level.spent)} spent)")
            if rule.kind == "budget":
                ratio = max(ratio, used / rule.limit)
        return ratio

    def _cheaper(self, ctx: RequestContext) -> list[ModelInfo]:
        assert ctx.route is not None
        able = self.providers.able(ctx.request)
        found = cheaper_models(self.catalog, able, ctx.route.model, ctx.request)
        key = ctx.key
        if key is not None:  # a key limited to some models is never moved outside them
            found = [m for m in found if key.allows(m.name) or key.allows(m.key)]
        return found

    async def _reserve(
        self, ctx: RequestContext, candidates: list[ModelInfo], ratio: float, read: _Read
    ) -> Reservation:
        """Reserve for the first candidate that fits; ``read``: the routed provider's rules,
        holds and levels, just read (other providers' rules are read afresh)."""
        assert ctx.route is not None
        original = ctx.route
        refused: Rule | None = None
        for model in self._candidates(ctx, candidates):
            amount = worst_case_cost(ctx.request, model)
            if model.provider == original.provider:
                result = await self.ledger.reserve(read.rules, amount, read.holds, read.levels)
            else:
                rules = self.ledger.rules_for(ctx.principal, ctx.key, model.provider)
                result = await self.ledger.reserve(rules, amount)
            if isinstance(result, Reservation):
                if model is not original.model:
                    self._reroute(ctx, model, original, ratio, refused)
                return result
            refused = refused or result
        assert refused is not None
        self.ledger.refused_later(refused)
        raise _refusal(refused, "has no room for this request (its worst-case cost was reserved)")

    def _candidates(self, ctx: RequestContext, candidates: list[ModelInfo]) -> Iterator[ModelInfo]:
        """``candidates`` in turn; when that is the routed model alone (not downgraded), the
        cheaper models after it — worked out only if it does not fit."""
        assert ctx.route is not None
        yield from candidates
        if len(candidates) == 1 and candidates[0] is ctx.route.model:
            yield from self._cheaper(ctx)

    def _reroute(self, ctx: RequestContext, model: ModelInfo, original: Route, ratio: float,
                 refused: Rule | None) -> None:  # fmt: skip
        why = (f"{refused.name} has no room for {original.model.name}" if refused
               else f"budget {ratio:.0%} used")  # fmt: skip
        ctx.route = Route(model.provider, model, f"downgraded from {original.model.key}: {why}")
        ctx.response_headers["x-meterline-provider"] = model.provider
        ctx.response_headers["x-meterline-model"] = model.name
        ctx.response_headers["x-meterline-downgraded-from"] = original.model.key

    def _settle(self, ctx: RequestContext, outcome: Outcome) -> None:
        # Whatever was used is paid, including the part of a stream that failed midway.
        if ctx.reservation is not None:
            self.ledger.settle_later(ctx.reservation, outcome.cost)
