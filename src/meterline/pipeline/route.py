"""Route stage: resolve the requested model name to a provider and a catalog model.

Accepted forms, in order: a configured alias; ``provider:model``; a bare model name that the
catalog (or a provider's configured model list) knows. Later routing policies (``auto``,
budgets, experiments) plug in here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from meterline.catalog import TIERS, Catalog, ModelInfo, Tier
from meterline.errors import ModelNotFound
from meterline.pipeline.context import Outcome, RequestContext, Route
from meterline.providers import ProviderRegistry
from meterline.routing.classifier import complexity_band
from meterline.routing.evaluator import evaluate
from meterline.routing.experiments import Experiments
from meterline.routing.policy import Router
from meterline.routing.stats import RouteStats

__all__ = ["Resolver", "RouteStage", "auto_tier"]


_DATED = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


def _undated(name: str) -> str:
    """The catalog name of a dated snapshot: ``claude-sonnet-4-5-20250929`` →
    ``claude-sonnet-4-5``, ``gpt-4o-2024-08-06`` → ``gpt-4o``."""
    return _DATED.sub("", name)


class Resolver:
    def __init__(
        self, catalog: Catalog, providers: ProviderRegistry, aliases: Mapping[str, str]
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.aliases = dict(aliases)

    def resolve(self, requested: str) -> Route:
        target = self.aliases.get(requested, requested)
        reason = f"alias {requested} -> {target}" if target != requested else ""
        route = self._explicit(target) or self._bare(target)
        if route is None:
            raise ModelNotFound(self._not_found(target), param="model")
        return Route(route.provider, route.model, reason or route.reason)

    def _explicit(self, target: str) -> Route | None:
        provider, sep, name = target.partition(":")
        if not sep or provider not in self.providers or not name:
            return None
        model = self.catalog.get(provider, name) or ModelInfo(provider=provider, name=name)
        return Route(provider, model, f"explicit {provider}:{name}")

    def _bare(self, name: str) -> Route | None:
        for candidate in (name, _undated(name)):
            for model in self.catalog.named(candidate):
                if model.provider in self.providers:
                    # A dated snapshot name (as Claude Code sends) goes upstream as asked.
                    served = model if candidate == name else replace(model, name=name)
                    reason = f"catalog: {candidate} served by {model.provider}"
                    return Route(model.provider, served, reason)
        return None

    def _not_found(self, name: str) -> str:
        known = [m.provider for m in self.catalog.named(name)]
        if known:
            return (
                f"The model `{name}` is served by {', '.join(known)}, which is not configured "
                "on this gateway."
            )
        return f"The model `{name}` does not exist or you do not have access to it."


def auto_tier(target: str) -> tuple[bool, Tier | None]:
    """``auto`` → (True, None); ``auto:premium`` → (True, "premium"); anything else → False."""
    if target == "auto":
        return True, None
    name, sep, tier = target.partition(":")
    if name == "auto" and sep:
        for known in TIERS:
            if tier == known:
                return True, known
    return False, None


class RouteStage:
    """Resolves explicit names, aliases and ``provider:model``; routes ``auto`` (and aliases
    that point at ``auto`` or ``auto:<tier>``) with the policy; learns from every outcome."""

    def __init__(self, resolver: Resolver, router: Router, stats: RouteStats,
                 experiments: Experiments | None = None) -> None:  # fmt: skip
        self.resolver = resolver
        self.router = router
        self.stats = stats
        self.experiments = experiments

    def decide(self, ctx: RequestContext) -> Route:
        requested = ctx.request.model
        experiment = self._experiment(ctx)
        if experiment is not None:
            return experiment
        is_auto, tier = auto_tier(self.resolver.aliases.get(requested, requested))
        if not is_auto:
            return self.resolver.resolve(requested)
        c = ctx.classification
        task = c.task_type if c else "other"
        band = complexity_band(c.complexity) if c else "medium"
        able = self.resolver.providers.able(ctx.request)
        choice = self.router.choose(ctx.request, task, band, able, tier)
        if choice is None:
            raise ModelNotFound("no configured model can serve this request", param="model")
        return Route(choice.model.provider, choice.model, choice.reason)

    def _experiment(self, ctx: RequestContext) -> Route | None:
        """An A/B experiment on this task type or this requested name picks the arm."""
        if self.experiments is None:
            return None
        c = ctx.classification
        requested = ctx.request.model
        is_auto, _ = auto_tier(self.resolver.aliases.get(requested, requested))
        found = self.experiments.match(c.task_type if c and is_auto else None, requested)
        if found is None:
            return None
        arm, target = self.experiments.assign(found)
        route = self.resolver.resolve(target)
        ctx.experiment = (found.id, arm)
        return Route(route.provider, route.model, f"experiment {found.id}: {arm} arm ({target})")

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.route = self.decide(ctx)
        ctx.response_headers["x-meterline-provider"] = ctx.route.provider
        ctx.response_headers["x-meterline-model"] = ctx.route.model.name
        ctx.on_complete(self._learn)
        return None

    def _learn(self, ctx: RequestContext, outcome: Outcome) -> None:
        if ctx.cache_hit or ctx.route is None or outcome.status == "cancelled" or outcome.refused:
            return  # nothing the model did (or did not do) to learn from
        c = ctx.classification
        verdict = evaluate(ctx.request, ctx.answer, outcome.status, c.task_type if c else None)
        ctx.success = verdict.success
        if c is None:
            return
        task, band, model = c.task_type, complexity_band(c.complexity), ctx.route.model
        self.stats.record(task, band, model.key, verdict.success,
                          upstream_failed=outcome.upstream_down)  # fmt: skip
        usage = outcome.usage
        if outcome.status == "ok" and usage.output_tokens:
            self.stats.observe_usage(task, band, usage.output_tokens, usage.reasoning_tokens,
                                     model.thinks_by_default)  # fmt: skip
