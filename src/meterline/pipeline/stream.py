"""Metering of a streamed answer: first-token time, usage (counted locally if the upstream
sent none), and completion when the stream ends, fails or is abandoned by the client."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from meterline.errors import GatewayError
from meterline.pipeline.assemble import Assembler
from meterline.pipeline.context import RequestContext
from meterline.tokens import count_messages, count_text
from meterline.types import ChatChunk, ChunkStream, Usage

__all__ = ["Primed", "metered"]


class Primed:
    """A stream whose first batch has been read already (to turn an upstream failure before
    the first byte into an error answer): that batch, then ``rest``.

    :func:`metered` takes the two apart, so the stream passes through one generator layer
    fewer than with a generator that yields ``first`` and then ``rest``'s batches."""

    __slots__ = ("first", "rest")

    def __init__(self, first: list[ChatChunk], rest: ChunkStream) -> None:
        self.first: list[ChatChunk] | None = first
        self.rest = rest

    def __aiter__(self) -> Primed:
        return self

    async def __anext__(self) -> list[ChatChunk]:
        first, self.first = self.first, None
        return first if first is not None else await anext(self.rest)

    async def aclose(self) -> None:
        await self.rest.aclose()  # type: ignore[attr-defined]


def _estimate(ctx: RequestContext, assembler: Assembler) -> Usage:
    """Usage counted locally, for an upstream that sent none (or a stream cut short)."""
    model = ctx.route.model.name if ctx.route else ctx.request.model
    return Usage(
        input_tokens=count_messages(ctx.request, model),
        output_tokens=count_text(assembler.produced(), model),
        estimated=True,
    )


def _fed(ctx: RequestContext, assembler: Assembler, chunks: list[ChatChunk]) -> list[ChatChunk]:
    if ctx.first_token_at is None:
        ctx.first_token_at = time.perf_counter()
    for chunk in chunks:
        assembler.feed(chunk)
    return chunks


def metered(ctx: RequestContext, source: ChunkStream) -> ChunkStream:
    """``source`` passed on, its chunks assembled into ``ctx.answer``; the request completes
    when it ends, fails or is closed."""
    if isinstance(source, Primed):
        return _metered(ctx, source.first, source.rest)
    return _metered(ctx, None, source)


async def _metered(
    ctx: RequestContext, first: list[ChatChunk] | None, source: ChunkStream
) -> ChunkStream:
    assembler = Assembler()
    status: Literal["ok", "error", "cancelled"] = "cancelled"
    error: GatewayError | None = None
    try:
        if first is not None:
            yield _fed(ctx, assembler, first)
        async for chunks in source:
            yield _fed(ctx, assembler, chunks)
        status = "ok"
        model = ctx.route.model.name if ctx.route else ctx.request.model
        ctx.answer = assembler.response(f"chatcmpl-{ctx.request_id}", model)
    except GatewayError as exc:
        status, error = "error", exc
        raise
    except (asyncio.CancelledError, GeneratorExit):
        raise
    except Exception as exc:
        status, error = "error", GatewayError(f"stream failed: {exc.__class__.__name__}")
        raise
    finally:
        await source.aclose()  # type: ignore[attr-defined]
        usage = assembler.usage if assembler.usage is not None else _estimate(ctx, assembler)
        ctx.complete(status, usage, error=error, finish_reason=assembler.finish)
