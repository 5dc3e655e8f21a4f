"""Prometheus metrics: what the request log records, counted in memory as requests end and
shown at ``GET /metrics`` in Prometheus's text format (``registry``, ``exposition``); the
workers of ``serve --workers N`` share theirs through snapshot files (``workers``)."""

from meterline.metrics.exposition import CONTENT_TYPE, render
from meterline.metrics.registry import Metrics, Snapshot, merged
from meterline.metrics.workers import WorkerSnapshots

__all__ = ["CONTENT_TYPE", "Metrics", "Snapshot", "WorkerSnapshots", "merged", "render"]
