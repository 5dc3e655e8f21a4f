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


async def open_counters(
    redis_url: str | None,
    prefix: str = "meterline:",
    file: str | None = None,
    slots: int | None = None,
) -> Counters:
    """Redis counters when a URL is given, else the shared file's when one is named, else
    in-process ones."""
    if redis_url:
        from meterline.accounting.counters.redis import RedisCounters

        return await RedisCounters.connect(redis_url, prefix)
    if file:
        from meterline.accounting.counters.shared import DEFAULT_SLOTS, SharedCounters

        return SharedCounters.open(file, slots or DEFAULT_SLOTS)
    return MemoryCounters()
