"""OpenTelemetry traces: one span per request, made when the request ends, from what its log
row records, with OpenTelemetry's GenAI attribute names (``gen_ai.*``) and the client's W3C
``traceparent`` as its parent, so the gateway's span sits inside the caller's trace.

Spans are exported over OTLP/HTTP by the SDK's batch processor, on its own thread: the request
path only builds the span (~45 µs, paid only when tracing is on). The SDK is an optional
dependency (``pip install 'meterline[otel]'``), imported only when tracing is configured
(``meterline.telemetry.otlp_endpoint``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from meterline.catalog import usd_str

try:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:
    raise ImportError(
        "tracing is configured but OpenTelemetry is not installed: pip install 'meterline[otel]'"
    ) from exc

if TYPE_CHECKING:
    from meterline.pipeline.context import Outcome, RequestContext

__all__ = ["Tracing"]


class Tracing:
    def __init__(self, endpoint: str, service_name: str) -> None:
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("meterline")
        self._propagator = TraceContextTextMapPropagator()

    def record(self, ctx: RequestContext, outcome: Outcome) -> None:
        """The span of a finished request (a completion callback)."""
        start = int(ctx.created_at * 1e9)
        model = ctx.route.model.name if ctx.route else ctx.model_requested
        span = self._tracer.start_span(
            f"chat {model}", context=self._propagator.extract(ctx.headers), kind=SpanKind.SERVER,
            start_time=start, attributes=_attributes(ctx, outcome),
        )  # fmt: skip
        if outcome.status == "error":
            span.set_status(Status(StatusCode.ERROR, outcome.error))
        span.end(end_time=start + int(outcome.latency_ms * 1e6))

    async def close(self) -> None:
        """Export what is left (the SDK blocks on it, so off the event loop)."""
        await asyncio.to_thread(self._provider.shutdown)


def _attributes(ctx: RequestContext, outcome: Outcome) -> dict[str, Any]:
    usage, route, request = outcome.usage, ctx.route, ctx.request
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": ctx.model_requested,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "http.response.status_code": outcome.http_status,
        "meterline.request_id": ctx.request_id,
        "meterline.surface": ctx.surface,
        "meterline.tenant": ctx.principal.tenant,
        "meterline.stream": request.stream,
        "meterline.cache_hit": ctx.cache_hit,
        "meterline.cost_usd": usd_str(outcome.cost),
        "meterline.attempts": ctx.attempt,
    }
    if route is not None:
        attributes |= {"gen_ai.provider.name": route.provider,
                       "gen_ai.response.model": route.model.name,
                       "meterline.route_reason": route.reason}  # fmt: skip
    if outcome.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [outcome.finish_reason]
    if request.max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = request.max_tokens
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.temperature
    if outcome.ttft_ms is not None:
        attributes["meterline.ttft_ms"] = round(outcome.ttft_ms, 3)
    if outcome.status != "ok":
        attributes["error.type"] = outcome.error or outcome.status
    return attributes
