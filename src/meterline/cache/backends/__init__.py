"""Cache backends: in-process LRU (one replica) or Redis (shared)."""

from meterline.cache.backends.base import CacheBackend
from meterline.cache.backends.memory import MemoryCache

__all__ = ["CacheBackend", "MemoryCache", "open_cache"]


async def open_cache(
    backend: str, redis_url: str | None, prefix: str, max_entries: int, max_bytes: int
) -> CacheBackend:
    if backend == "redis":
        if not redis_url:
            raise ValueError("cache.backend is redis but no Redis URL is configured")
        from meterline.cache.backends.redis import RedisCache

        return await RedisCache.connect(redis_url, prefix)
    return MemoryCache(max_entries, max_bytes)
