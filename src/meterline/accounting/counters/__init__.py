"""Spend and rate counters: in memory (one process) or in Redis (many replicas)."""

from meterline.accounting.counters.base import Admitted, Counters, Hold, Level, Window, WindowHit
from meterline.accounting.counters.memory import MemoryCounters

__all__ = [
    "Admitted",
    "Counters",
    "Hold",
    "Level",
    "MemoryCounters",
    "Window",
    "WindowHit",
    "open_counters",
]


async def open_counters(redis_url: str | None, prefix: str = "meterline:") -> Counters:
    """Redis counters when a URL is given, else in-process ones."""
    if not redis_url:
        return MemoryCounters()
    from meterline.accounting.counters.redis import RedisCounters

    return await RedisCounters.connect(redis_url, prefix)
