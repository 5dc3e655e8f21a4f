"""Runs the stages in order; the first stage that answers ends the walk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meterline.errors import GatewayError
from meterline.pipeline.context import RequestContext
from meterline.pipeline.stream import metered
from meterline.types import ChatResponse, ChunkStream, Usage

__all__ = ["Pipeline", "Reply", "Stage"]

Reply = ChatResponse | ChunkStream


class Stage(Protocol):
    """One step of the request pipeline: answer the request (return a reply) or pass (None).

    Stages may register ``ctx.on_complete`` callbacks to act once the request has ended.
    """

    async def __call__(self, ctx: RequestContext) -> Reply | None: ...


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    async def run(self, ctx: RequestContext) -> Reply:
        """Walk the stages; a stream comes back metered, a response already completed."""
        try:
            reply = await self._walk(ctx)
        except GatewayError as exc:
            ctx.complete("error", Usage(), error=exc)
            raise
        if isinstance(reply, ChatResponse):
            ctx.answer = reply
            ctx.complete("ok", reply.usage, finish_reason=reply.finish_reason)
            return reply
        return metered(ctx, reply)

    async def _walk(self, ctx: RequestContext) -> Reply:
        for stage in self.stages:
            reply = await stage(ctx)
            if reply is not None:
                return reply
        raise GatewayError("no pipeline stage answered the request")
