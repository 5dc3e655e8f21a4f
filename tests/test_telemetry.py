"""OpenTelemetry: a span per request, exported over OTLP/HTTP (received here by a fake
collector that decodes the protobuf as a real one does), inside the caller's trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from meterline.settings import (
    CacheSettings,
    LogSettings,
    ProviderSettings,
    Settings,
    TelemetrySettings,
)
from meterline.sim import OpenAISim, SimSettings
from meterline.telemetry import otlp_endpoint
from tests.fakes.harness import BackgroundLoop, start_gateway

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind)


def test_each_request_is_a_span_in_the_callers_trace(bg: BackgroundLoop, tmp_path: Path) -> None:
    exported: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        exported.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def collector() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = bg.run(collector())
    sim = OpenAISim(SimSettings(api_key="k"))
    bg.run(sim.start())
    endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/traces"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'gw.db'}", cache=CacheSettings(enabled=False),
        providers=(ProviderSettings(name="openai", type="openai", base_url=sim.base_url,
                                    api_key="k"),),
        log=LogSettings(flush_interval=0.05),
        telemetry=TelemetrySettings(otlp_endpoint=endpoint, service_name="gw-test"),
    )  # fmt: skip
    live = start_gateway(bg, settings)
    try:
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", max_tokens=200, messages=[{"role": "user", "content": "Hi"}],
                extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )  # fmt: skip
            list(client.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Hi s"}]
            ))  # fmt: skip
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "x"}]
                )
    finally:
        live.stop()  # the exporter sends what is left before the gateway stops
        bg.run(sim.stop())
        bg.run(runner.cleanup())

    resource = exported[0].resource_spans[0].resource
    assert {a.key: _value(a.value) for a in resource.attributes}["service.name"] == "gw-test"
    spans = [
        s for e in exported for rs in e.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    assert len(spans) == 3
    by_request = {}
    for span in spans:
        attributes = {a.key: _value(a.value) for a in span.attributes}
        by_request[attributes["meterline.request_id"]] = (span, attributes)
    span, attributes = by_request[raw.headers["x-meterline-request-id"]]
    assert span.name == "chat gpt-4o-mini" and span.kind == span.SPAN_KIND_SERVER
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT_ID
    usage = raw.parse().usage
    assert usage is not None
    assert attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.max_tokens"] == 200
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert float(attributes["meterline.cost_usd"]) > 0
    assert span.end_time_unix_nano > span.start_time_unix_nano
    streamed = [a for _, a in by_request.values() if a["meterline.stream"]]
    assert len(streamed) == 1 and streamed[0]["meterline.ttft_ms"] > 0
    failed = [(s, a) for s, a in by_request.values() if a["http.response.status_code"] == 404]
    assert len(failed) == 1 and failed[0][0].status.code == failed[0][0].status.STATUS_CODE_ERROR
    assert not failed[0][0].parent_span_id  # no traceparent: a trace of its own


def test_the_endpoint_follows_the_sdks_variables() -> None:
    settings = TelemetrySettings()
    assert otlp_endpoint(settings, {}) is None
    assert otlp_endpoint(settings, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == (
        "http://c:4318/v1/traces"
    )
    both = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/x"}  # fmt: skip
    assert otlp_endpoint(settings, both) == "http://t:4318/x"
    assert otlp_endpoint(TelemetrySettings(otlp_endpoint="http://cfg/v1/traces"), both) == (
        "http://cfg/v1/traces"
    )
