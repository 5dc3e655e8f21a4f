"""Trace stage: a span for each request once it ends (``meterline.tracing``); in the pipeline
only when tracing is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterline.pipeline.context import RequestContext

if TYPE_CHECKING:
    from meterline.tracing import Tracing

__all__ = ["TraceStage"]


class TraceStage:
    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.on_complete(self.tracing.record)
        return None
