"""Route stage: resolve the requested model name to a provider and a catalog model.

Accepted forms, in order: a configured alias; ``provider:model``; a bare model name that the
catalog (or a provider's configured model list) knows. Later routing policies (``auto``,
budgets, experiments) plug in here.
"""

from __future__ import annotations

from collections.abc import Mapping

from meterline.catalog import Catalog, ModelInfo
from meterline.errors import ModelNotFound
from meterline.pipeline.context import RequestContext, Route
from meterline.providers import ProviderRegistry

__all__ = ["Resolver", "RouteStage"]


class Resolver:
    def __init__(
        self, catalog: Catalog, providers: ProviderRegistry, aliases: Mapping[str, str]
    ) -> None:
        self.catalog = catalog
        self.providers = providers
        self.aliases = dict(aliases)

    def resolve(self, requested: str) -> Route:
        target = self.aliases.get(requested, requested)
        reason = f"alias {requested} → {target}" if target != requested else ""
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
        for model in self.catalog.named(name):
            if model.provider in self.providers:
                return Route(model.provider, model, f"catalog: {name} served by {model.provider}")
        return None

    def _not_found(self, name: str) -> str:
        known = [m.provider for m in self.catalog.named(name)]
        if known:
            return (
                f"The model `{name}` is served by {', '.join(known)}, which is not configured "
                "on this gateway."
            )
        return f"The model `{name}` does not exist or you do not have access to it."


class RouteStage:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.route = self.resolver.resolve(ctx.request.model)
        ctx.response_headers["x-meterline-provider"] = ctx.route.provider
        ctx.response_headers["x-meterline-model"] = ctx.route.model.name
        return None
