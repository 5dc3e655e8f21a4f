"""The metrics one process counts: every request log row (final answers and failed fallback
attempts alike) adds to them as it is submitted, in a few dictionary updates.

Labels stay few and bounded: surface, provider, model, status and cache hit for requests;
provider, model and token type for tokens; provider and model for cost. No tenant or key
labels: those belong to the analytics API, which can afford them.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

__all__ = ["DURATION_BUCKETS", "Metrics", "Snapshot", "merged"]

# Seconds; the last bucket, +Inf, is implied.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0)  # fmt: skip
_TOKEN_TYPES = ("input", "output", "cached", "cache_write", "reasoning")
_TOKEN_FIELDS = tuple((kind, f"{kind}_tokens") for kind in _TOKEN_TYPES)

Snapshot = dict[str, Any]
"""Counts as plain data (JSON-ready): ``{family: [[label values…, value], …]}``, histograms'
values as ``[bucket counts…, count, sum]``."""


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(DURATION_BUCKETS)  # not cumulative: one bucket per value
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        where = bisect.bisect_left(DURATION_BUCKETS, seconds)
        if where < len(self.buckets):
            self.buckets[where] += 1
        self.count += 1
        self.total += seconds


class Metrics:
    """Counts of this process. ``probe`` adds figures read when a snapshot is taken (the log
    writer's: rows written, spilled, queued), summed across workers like the rest."""

    def __init__(self, probe: Callable[[], dict[str, float]] | None = None) -> None:
        self.probe = probe
        self.requests: dict[tuple[str, ...], int] = {}
        self.tokens: dict[tuple[str, ...], int] = {}
        self.cost_pusd: dict[tuple[str, ...], int] = {}
        self.duration: dict[tuple[str, ...], _Histogram] = {}
        self.ttft: dict[tuple[str, ...], _Histogram] = {}
        self.guard: dict[tuple[str, ...], int] = {}

    def observe(self, row: dict[str, Any]) -> None:
        """Count one request log row (``pipeline.log.row_for``)."""
        provider, model = row["provider"] or "", row["model"] or ""
        key = (
            row["surface"],
            provider,
            model,
            row["status"],
            "true" if row["cache_hit"] else "false",
        )
        self.requests[key] = self.requests.get(key, 0) + 1
        for kind, field in _TOKEN_FIELDS:
            count = row[field]
            if count:
                where = (provider, model, kind)
                self.tokens[where] = self.tokens.get(where, 0) + count
        if row["cost_pusd"]:
            self.cost_pusd[(provider, model)] = (
                self.cost_pusd.get((provider, model), 0) + row["cost_pusd"]
            )
        stream = "true" if row["stream"] else "false"
        _histogram(self.duration, (row["surface"], stream)).observe(row["latency_ms"] / 1000)
        if row["ttft_ms"] is not None:
            _histogram(self.ttft, (row["surface"],)).observe(row["ttft_ms"] / 1000)
        if row.get("guard"):
            self._guard(row["guard"])

    def _guard(self, found: dict[str, Any]) -> None:
        for kind, count in found.get("secrets", {}).items():
            key = (kind, found["secrets_action"])
            self.guard[key] = self.guard.get(key, 0) + count
        if found.get("injection"):
            key = ("injection", found["injection_action"])
            self.guard[key] = self.guard.get(key, 0) + 1

    def snapshot(self) -> Snapshot:
        return {
            "requests": [[*k, v] for k, v in self.requests.items()],
            "tokens": [[*k, v] for k, v in self.tokens.items()],
            "cost_pusd": [[*k, v] for k, v in self.cost_pusd.items()],
            "duration": [[*k, [*h.buckets, h.count, h.total]] for k, h in self.duration.items()],
            "ttft": [[*k, [*h.buckets, h.count, h.total]] for k, h in self.ttft.items()],
            "guard": [[*k, v] for k, v in self.guard.items()],
            "process": [
                [name, value] for name, value in (self.probe() if self.probe else {}).items()
            ],
        }


def merged(snapshots: list[Snapshot]) -> Snapshot:
    """Several processes' snapshots summed, label set by label set."""
    out: Snapshot = {}
    for family in dict.fromkeys(f for snapshot in snapshots for f in snapshot):
        sums: dict[tuple[str, ...], Any] = {}
        for snapshot in snapshots:
            for *labels, value in snapshot.get(family, ()):
                key = tuple(labels)
                if key not in sums:
                    sums[key] = value
                elif isinstance(value, list):
                    sums[key] = [a + b for a, b in zip(sums[key], value, strict=True)]
                else:
                    sums[key] += value
        out[family] = [[*k, v] for k, v in sums.items()]
    return out


def _histogram(table: dict[tuple[str, ...], _Histogram], key: tuple[str, ...]) -> _Histogram:
    found = table.get(key)
    if found is None:
        found = table[key] = _Histogram()
    return found
