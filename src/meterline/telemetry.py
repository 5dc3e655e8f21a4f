"""OpenTelemetry: where traces go. The tracing itself (``meterline.tracing``) imports the SDK,
an optional dependency, only when an endpoint is set: a gateway without tracing never loads it
(~0.2 s and several MB)."""

from __future__ import annotations

from collections.abc import Mapping

from meterline.settings import TelemetrySettings

__all__ = ["otlp_endpoint"]


def otlp_endpoint(settings: TelemetrySettings, env: Mapping[str, str]) -> str | None:
    """Where traces go: the config, else the OpenTelemetry SDKs' own variables."""
    if settings.otlp_endpoint:
        return settings.otlp_endpoint
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else None
