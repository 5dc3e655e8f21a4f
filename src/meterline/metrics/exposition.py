"""Prometheus's text exposition format (version 0.0.4) for a metrics snapshot."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from meterline.metrics.registry import DURATION_BUCKETS, Snapshot

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PICO = 10**12

# family → (metric name, type, help, label names)
_FAMILIES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "requests": ("meterline_requests_total", "counter",
                 "Requests answered (and failed fallback attempts), by outcome.",
                 ("surface", "provider", "model", "status", "cache_hit")),
    "tokens": ("meterline_tokens_total", "counter",
               "Tokens billed by the upstream (or estimated when it reported none).",
               ("provider", "model", "type")),
    "cost_pusd": ("meterline_cost_usd_total", "counter",
                  "Cost in US dollars, from the catalog's exact prices.", ("provider", "model")),
    "duration": ("meterline_request_duration_seconds", "histogram",
                 "Time from the request's arrival to its answer's end.", ("surface", "stream")),
    "ttft": ("meterline_time_to_first_token_seconds", "histogram",
             "Time from a streamed request's arrival to its first token.", ("surface",)),
    "guard": ("meterline_guard_findings_total", "counter",
              "Credentials (by kind) and prompt-injection phrases the guard found.",
              ("finding", "action")),
}  # fmt: skip

# The figures a snapshot's ``process`` family may hold (``Metrics.probe``).
_PROCESS = {
    "log_rows_written": ("meterline_log_rows_written_total", "counter",
                         "Request log rows written to the database."),
    "log_rows_spilled": ("meterline_log_rows_spilled_total", "counter",
                         "Request log rows spilled to disk because the queue was full."),
    "log_queue_rows": ("meterline_log_queue_rows", "gauge",
                       "Request log rows waiting to be written."),
}  # fmt: skip


def render(snapshot: Snapshot) -> str:
    """The exposition of ``snapshot``."""
    lines: list[str] = []
    for family, (name, kind, text, labels) in _FAMILIES.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for *values, value in sorted(snapshot.get(family, ()), key=lambda s: s[:-1]):
            pairs = list(zip(labels, values, strict=True))
            if kind == "histogram":
                lines += _histogram(name, pairs, value)
            elif family == "cost_pusd":
                lines.append(f"{name}{_labels(pairs)} {_number(value / _PICO)}")
            else:
                lines.append(f"{name}{_labels(pairs)} {value}")
    process = dict(snapshot.get("process", ()))
    for key, (name, kind, text) in _PROCESS.items():
        if key in process:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {process[key]}"]
    return "\n".join(lines) + "\n"


def _histogram(name: str, pairs: list[tuple[str, str]], value: list[Any]) -> Iterator[str]:
    *buckets, count, total = value
    running = 0
    for bound, in_bucket in zip(DURATION_BUCKETS, buckets, strict=True):
        running += in_bucket
        yield f"{name}_bucket{_labels([*pairs, ('le', _number(bound))])} {running}"
    yield f"{name}_bucket{_labels([*pairs, ('le', '+Inf')])} {count}"
    yield f"{name}_count{_labels(pairs)} {count}"
    yield f"{name}_sum{_labels(pairs)} {_number(total)}"


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value))
