"""Metering of a streamed answer: first-token time, usage (counted locally if the upstream
sent none), and completion when the stream ends, fails or is abandoned by the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from meterline.errors import GatewayError
from meterline.pipeline.assemble import Assembler
from meterline.pipeline.context import RequestContext
from meterline.tokens import count_messages, count_text
from meterline.types import ChatChunk, Usage

__all__ = ["metered", "prepend"]


async def prepend(first: ChatChunk, rest: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
    """``first`` followed by ``rest``; closing this closes ``rest``."""
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def _estimate(ctx: RequestContext, text: list[str]) -> Usage:
    model = ctx.route.model.name if ctx.route else ctx.request.model
    return Usage(
        input_tokens=count_messages(ctx.request, model),
        output_tokens=count_text("".join(text), model),
        estimated=True,
    )


async def metered(
    ctx: RequestContext, source: AsyncIterator[ChatChunk]
) -> AsyncIterator[ChatChunk]:
    usage: Usage | None = None
    finish: str | None = None
    produced: list[str] = []
    assembler = Assembler()
    status = "cancelled"
    error: GatewayError | None = None
    try:
        async for chunk in source:
            if ctx.first_token_at is None:
                ctx.first_token_at = time.perf_counter()
            assembler.feed(chunk)
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.finish_reason is not None:
                finish = chunk.finish_reason
            if usage is None:
                produced.append(chunk.text or chunk.thinking or "")
                if chunk.tool_call is not None:
                    produced.append((chunk.tool_call.name or "") + chunk.tool_call.arguments)
            yield chunk
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
        final = usage if usage is not None else _estimate(ctx, produced)
        ctx.complete(status, final, error=error, finish_reason=finish)  # type: ignore[arg-type]
