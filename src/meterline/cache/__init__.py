"""The response cache: keys, backends and the pipeline stage."""

from meterline.cache.backends import CacheBackend, MemoryCache, open_cache
from meterline.cache.keys import cache_key
from meterline.cache.stage import CacheStage

__all__ = ["CacheBackend", "CacheStage", "MemoryCache", "cache_key", "open_cache"]
