"""Persistence: schema, migrations, the batched writer and analytics queries."""

from meterline.store.db import async_url, open_engine
from meterline.store.queries import GroupStats, recent_requests, usage_stats
from meterline.store.writer import LogWriter

__all__ = ["GroupStats", "LogWriter", "async_url", "open_engine", "recent_requests", "usage_stats"]
