"""Dispatch stage: hand the request to the routed provider.

A stream is primed here, i.e. its first chunk is awaited before the reply leaves the pipeline,
so upstream errors that happen before the first byte still become proper HTTP error answers.
"""

from __future__ import annotations

from meterline.errors import GatewayError
from meterline.pipeline.context import RequestContext
from meterline.pipeline.pipeline import Reply
from meterline.pipeline.stream import prepend
from meterline.providers import ProviderRegistry
from meterline.types import ChatChunk

__all__ = ["Dispatch"]


class Dispatch:
    def __init__(self, providers: ProviderRegistry) -> None:
        self.providers = providers

    async def __call__(self, ctx: RequestContext) -> Reply:
        route = ctx.route
        if route is None:
            raise GatewayError("dispatch reached without a route")
        provider = self.providers.get(route.provider)
        if provider is None:
            raise GatewayError(f"provider {route.provider!r} is not available")
        request = ctx.request.with_model(route.model.name)
        if not request.stream:
            return await provider.complete(request)
        stream = provider.stream(request)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = ChatChunk(finish_reason="stop")
        return prepend(first, stream)
