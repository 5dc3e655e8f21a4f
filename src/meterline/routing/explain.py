"""Explaining a routing decision without calling a model (``/api/routing/explain``,
``meterline route``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterline.catalog import to_usd
from meterline.routing.classifier import classify, complexity_band
from meterline.routing.policy import Router
from meterline.types import ChatRequest

if TYPE_CHECKING:
    from meterline.pipeline.route import RouteStage

__all__ = ["explain_route"]


def explain_route(stage: RouteStage, router: Router, request: ChatRequest) -> dict[str, object]:
    from meterline.pipeline.context import RequestContext

    c = classify(request)
    band = complexity_band(c.complexity)
    ctx = RequestContext(request, "explain", classification=c)
    route = stage.decide(ctx)
    candidates = []
    for model in router.candidates(request, stage.resolver.providers, None, c.task_type, band):
        record = router.stats.get(c.task_type, band, model.key)
        estimate = router.stats.failure_rate(c.task_type, band, model.key)
        candidates.append({
            "model": model.key, "tier": model.tier,
            "price_per_mtok_usd": {"input": str(to_usd(model.price.input * 10**6)),
                                   "output": str(to_usd(model.price.output * 10**6))},
            "judged": record.total, "success_rate": round(record.rate, 4),
            "success_lower_bound": round(record.lower_bound, 4),
            "expected_success": round(1 - estimate.failure, 4),
            "cooling_down": router.stats.cooling(model.key),
        })  # fmt: skip
    return {
        "classification": {
            "task_type": c.task_type, "complexity": c.complexity, "band": band,
            "language": c.language, "stack": c.stack, "domain": c.domain,
            "signals": list(c.signals),
        },
        "route": {"provider": route.provider, "model": route.model.name,
                  "tier": route.model.tier, "reason": route.reason},
        "candidates": candidates,
    }  # fmt: skip
