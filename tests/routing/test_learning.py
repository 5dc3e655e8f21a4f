"""What the route stage learns from an outcome: the judged answer, whether the upstream was down
(the cool-down's business), the answer's length, and nothing at all when the gateway itself
refused the request."""

from __future__ import annotations

import pytest

from meterline.catalog import Catalog
from meterline.errors import BudgetExceeded, GatewayError, UpstreamBadRequest, UpstreamUnavailable
from meterline.pipeline.context import RequestContext, Route
from meterline.pipeline.route import Resolver, RouteStage
from meterline.providers.registry import ProviderRegistry
from meterline.routing.classifier import classify
from meterline.routing.policy import Router
from meterline.routing.stats import RouteStats
from meterline.settings import RoutingSettings
from meterline.types import ChatRequest, Message, TextPart, Usage

CATALOG = Catalog.builtin()
NANO = next(m for m in CATALOG if m.key == "openai:gpt-4.1-nano")


def _stage(stats: RouteStats) -> RouteStage:
    resolver = Resolver(CATALOG, ProviderRegistry(), {})
    return RouteStage(resolver, Router(CATALOG, stats, RoutingSettings()), stats)


def _finish(stage: RouteStage, error: GatewayError | None, usage: Usage | None = None
            ) -> RequestContext:  # fmt: skip
    request = ChatRequest("auto", (Message("user", (TextPart("What is the capital of Peru?"),)),))
    ctx = RequestContext(request, "openai", classification=classify(request))
    ctx.route = Route("openai", NANO, "test")
    ctx.on_complete(stage._learn)
    ctx.complete("error" if error else "ok", usage or Usage(), error=error)
    return ctx


def test_a_request_the_gateway_refused_teaches_nothing() -> None:
    stats = RouteStats()
    ctx = _finish(_stage(stats), BudgetExceeded("daily budget exhausted"))
    assert ctx.outcome is not None and ctx.outcome.refused and not ctx.outcome.upstream_down
    assert stats.get("simple_qa", "low", NANO.key).total == 0 and ctx.success is None


@pytest.mark.parametrize(
    ("error", "down"),
    [(UpstreamUnavailable("overloaded"), True), (UpstreamBadRequest("bad content"), False)],
)
def test_an_upstream_error_is_a_failure_and_only_outages_count_towards_the_cool_down(
    error: GatewayError, down: bool
) -> None:
    stats = RouteStats()
    stage = _stage(stats)
    for _ in range(3):
        ctx = _finish(stage, error)
        assert ctx.outcome is not None and ctx.outcome.upstream_down is down
        assert ctx.success is False
    assert stats.get("simple_qa", "low", NANO.key).total == 3
    assert stats.cooling(NANO.key) is down


def test_an_answer_teaches_its_length() -> None:
    stats = RouteStats()
    _finish(_stage(stats), None, Usage(20, 300))
    _finish(_stage(stats), UpstreamUnavailable("overloaded"))  # no answer, no length
    lengths = stats.lengths("simple_qa", "low")
    assert lengths.answers == 1 and lengths.thought == 0  # gpt-4.1-nano does not think
    assert lengths.output == 400  # the guess (500) and one answer of 300, as equals
    assert stats.lengths("code_gen", "high").answers == 0
