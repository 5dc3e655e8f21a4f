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

__all__ = ["metered", "prepend"]


async def prepend(first: list[ChatChunk], rest: ChunkStream) -> ChunkStream:
    """``first`` followed by ``rest``; closing this closes ``rest``."""
    try:
        yield first
        async for chunks in rest:
            yield chunks
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def _estimate(ctx: RequestContext, assembler: Assembler) -> Usage:
    """Usage counted locally, for an upstream that sent none (or a stream cut short)."""
    model = ctx.route.model.name if ctx.route else ctx.request.model
    return Usage(
        input_tokens=count_messages(ctx.request, model),
        output_tokens=count_text(assembler.produced(), model),
        estimated=True,
    )


async def metered(ctx: RequestContext, source: ChunkStream) -> ChunkStream:
    assembler = Assembler()
    status: Literal["ok", "error", "cancelled"] = "cancelled"
    error: GatewayError | None = None
    try:
        async for chunks in source:
            if ctx.first_token_at is None:
                ctx.first_token_at = time.perf_counter()
            for chunk in chunks:
                assembler.feed(chunk)
            yield chunks
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
