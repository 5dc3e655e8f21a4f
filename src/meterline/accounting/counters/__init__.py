"""Spend and rate counters: in memory (one process), in a shared file (the processes of one
host) or in Redis (any number of replicas)."""

from meterline.accounting.counters.base import (
    Admitted,
    Counters,
    Hold,
    ImmediateCounters,
    Level,
    Window,
    WindowHit,
)
from meterline.accounting.counters.memory import MemoryCounters
from meterline.settings.schema import AccountingSettings

__all__ = [
    "Admitted",
    "Counters",
    "Hold",
    "ImmediateCounters",
    "Level",
    "MemoryCounters",
    "Window",
    "WindowHit",
    "open_counters",
]


async def open_counters(settings: AccountingSettings) -> Counters:
    """Redis counters when a URL is set, else the shared file's when one is named, else
    in-process ones."""
    if settings.redis_url:
        from meterline.accounting.counters.redis import RedisCounters

        return await RedisCounters.connect(settings.redis_url, settings.redis_prefix)
    if settings.counters_file:
        from meterline.accounting.counters.shared import SharedCounters

        return SharedCounters.open(settings.counters_file, settings.counters_slots)
    return MemoryCounters()
