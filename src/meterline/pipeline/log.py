"""Log stage: once a request has ended, hand its row to the batched writer (never awaited)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from meterline.pipeline.context import Outcome, RequestContext

__all__ = ["RequestLog", "RowSink", "row_for"]


class RowSink(Protocol):
    def submit(self, row: dict[str, Any]) -> None: ...


def row_for(ctx: RequestContext, outcome: Outcome) -> dict[str, Any]:
    """The ``requests`` table row for a finished request."""
    usage = outcome.usage
    route = ctx.route
    return {
        "id": ctx.request_id,
        "created_at": dt.datetime.fromtimestamp(ctx.created_at, dt.UTC),
        "tenant": ctx.principal.tenant,
        "key_id": ctx.principal.key_id,
        "surface": ctx.surface,
        "provider": route.provider if route else None,
        "model_requested": ctx.model_requested,
        "model": route.model.name if route else None,
        "route_reason": route.reason if route else None,
        "status": outcome.status,
        "http_status": outcome.http_status,
        "error": outcome.error,
        "stream": ctx.request.stream,
        "finish_reason": outcome.finish_reason,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "usage_estimated": usage.estimated,
        "cost_pusd": outcome.cost,
        "latency_ms": round(outcome.latency_ms, 3),
        "ttft_ms": round(outcome.ttft_ms, 3) if outcome.ttft_ms is not None else None,
        "metadata": ctx.metadata or None,
        "team": ctx.principal.team,
        "user": ctx.principal.user,
        "budget_remaining_pusd": ctx.budget_remaining,
        "cache_hit": ctx.cache_hit,
        "cache_match": _cache_match(ctx),
        "cache_similarity": ctx.cache_similarity,
        "tokens_before": ctx.tokens_before,
        "tokens_after": ctx.tokens_after,
        "compression": ctx.compression,
        "guard": ctx.guard,
        "request_group_id": ctx.group_id or ctx.request_id,
        "attempt": ctx.attempt,
        "experiment": ctx.experiment[0] if ctx.experiment else None,
        "arm": ctx.experiment[1] if ctx.experiment else None,
        "success": ctx.success,
        **_classification(ctx),
    }


def _cache_match(ctx: RequestContext) -> str | None:
    if not ctx.cache_hit:
        return None
    return "exact" if ctx.cache_similarity is None else "semantic"


def _classification(ctx: RequestContext) -> dict[str, Any]:
    c = ctx.classification
    if c is None:
        return dict.fromkeys(("task_type", "complexity", "language", "stack", "domain"))
    return {"task_type": c.task_type, "complexity": c.complexity, "language": c.language,
            "stack": c.stack, "domain": c.domain}  # fmt: skip


class RequestLog:
    def __init__(self, sink: RowSink) -> None:
        self.sink = sink

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.on_complete(self._record)
        return None

    def _record(self, ctx: RequestContext, outcome: Outcome) -> None:
        self.sink.submit(row_for(ctx, outcome))
