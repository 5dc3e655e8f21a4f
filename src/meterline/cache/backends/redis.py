"""A cache shared by replicas, in Redis (``SET key value PX ttl``)."""

from __future__ import annotations

try:
    import redis.asyncio as aioredis
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Redis cache needs redis: pip install 'meterline[redis]'") from exc

__all__ = ["RedisCache"]


class RedisCache:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    async def connect(cls, url: str, prefix: str = "meterline:cache:") -> RedisCache:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=5)
        client = aioredis.Redis.from_pool(pool)
        await client.ping()
        return cls(client, prefix)

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self.client.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))

    async def aclose(self) -> None:
        await self.client.aclose()
