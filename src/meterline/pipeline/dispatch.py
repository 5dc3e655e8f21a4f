"""Dispatch stage: hand the request to the routed provider, falling back along a chain.

A stream is primed here, i.e. its first chunk is awaited before the reply leaves the pipeline,
so upstream errors that happen before the first byte still become proper HTTP error answers —
and can still fall back. On a retryable failure (``fallback.on``) the next model of the chain
is tried, up to ``fallback.max_attempts``: each failed attempt is logged as its own row, linked
to the final one by ``request_group_id``, and the budget is checked again for every attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses

from meterline.catalog import Catalog, ModelInfo
from meterline.errors import GatewayError, InvalidRequest, ProviderError
from meterline.pipeline.budget import BudgetStage
from meterline.pipeline.context import Outcome, RequestContext, Route, new_request_id
from meterline.pipeline.log import RowSink, row_for
from meterline.pipeline.pipeline import Reply
from meterline.pipeline.stream import Primed
from meterline.providers import ProviderRegistry
from meterline.providers.registry import can_take
from meterline.routing.classifier import complexity_band
from meterline.routing.fallback import failure_kind, next_in_chain
from meterline.routing.stats import RouteStats
from meterline.settings import FallbackSettings
from meterline.types import ChatChunk, Usage

__all__ = ["Dispatch"]


class Dispatch:
    def __init__(self, providers: ProviderRegistry, catalog: Catalog, budget: BudgetStage,
                 sink: RowSink, settings: FallbackSettings,
                 stats: RouteStats | None = None) -> None:  # fmt: skip
        self.stats = stats
        self.providers = providers
        self.catalog = catalog
        self.budget = budget
        self.sink = sink
        self.settings = settings

    async def __call__(self, ctx: RequestContext) -> Reply:
        # One turn of the event loop between the request's own work and its upstream call.
        # Under load the loop runs every ready task, then polls its sockets: a call made at
        # the end of that run gets its answer after the poll and waits out a whole turn,
        # while a call made here goes out at the start of the next turn, with the short
        # steps of the other requests that wait to call too (benchmarks/NOTES.md, row 34).
        await asyncio.sleep(0)
        tried: set[str] = set()
        while True:
            assert ctx.route is not None, "dispatch reached without a route"
            tried.add(ctx.route.model.key)
            try:
                return await self._attempt(ctx)
            except ProviderError as exc:
                following = self._following(ctx, exc, tried)
                if following is None:
                    raise
                try:
                    await self.budget.switch(ctx, following)
                except GatewayError:
                    raise exc from None  # no budgeted fallback: the upstream's error stands
                self._log_failed_attempt(ctx, exc)
                reason = f"fallback after {ctx.route.model.key} failed ({exc.status})"
                ctx.route = Route(following.provider, following, reason)
                ctx.attempt += 1
                ctx.response_headers["x-meterline-provider"] = following.provider
                ctx.response_headers["x-meterline-model"] = following.name
                ctx.response_headers["x-meterline-attempts"] = str(ctx.attempt)

    def _following(
        self, ctx: RequestContext, exc: ProviderError, tried: set[str]
    ) -> ModelInfo | None:
        s = self.settings
        wanted = ctx.headers.get("x-meterline-fallback", "true").lower() != "false"
        if not (s.enabled and wanted and exc.retryable) or ctx.attempt >= s.max_attempts:
            return None
        if failure_kind(exc) not in s.on:
            return None
        assert ctx.route is not None
        able = self.providers.able(ctx.request)
        return next_in_chain(self.catalog, able, ctx.route.model, tried, ctx.request)

    async def _attempt(self, ctx: RequestContext) -> Reply:
        assert ctx.route is not None
        provider = self.providers.get(ctx.route.provider)
        if provider is None:
            raise GatewayError(f"provider {ctx.route.provider!r} is not available")
        request = ctx.request.with_model(ctx.route.model.name)
        if not can_take(provider, request):
            raise InvalidRequest(
                f"the request holds {request.opaque}, which only an upstream of the "
                f"{request.wire} format can take; {ctx.route.model.key} speaks {provider.wire}",
                code="untranslatable_content",
            )
        if not request.stream:
            return await provider.complete(request)
        stream = provider.stream(request)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = [ChatChunk(finish_reason="stop")]
        return Primed(first, stream)

    def _log_failed_attempt(self, ctx: RequestContext, exc: ProviderError) -> None:
        """Its own log row, and a failure the router learns from."""
        assert ctx.route is not None
        c = ctx.classification
        if c is not None and self.stats is not None:
            band = complexity_band(c.complexity)
            self.stats.record(c.task_type, band, ctx.route.model.key, False,
                              upstream_failed=exc.retryable)  # fmt: skip
        ctx.group_id = ctx.request_id
        attempt = dataclasses.replace(ctx, request_id=new_request_id(), group_id=ctx.request_id,
                                      _completions=[])  # fmt: skip
        outcome = Outcome("error", Usage(), http_status=exc.status, error=exc.message,
                          latency_ms=ctx.elapsed_ms())  # fmt: skip
        self.sink.submit(row_for(attempt, outcome))
