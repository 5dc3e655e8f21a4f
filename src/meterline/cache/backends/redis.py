"""A cache shared by replicas, in Redis (``SET key value PX ttl``), through
:mod:`meterline.resp`."""

from __future__ import annotations

from meterline.resp import Redis

__all__ = ["RedisCache"]


class RedisCache:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    async def connect(cls, url: str, prefix: str = "meterline:cache:") -> RedisCache:
        client = Redis.from_url(url)
        await client.execute("PING")
        return cls(client, prefix)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.client.execute("GET", self.prefix + key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self.client.execute("SET", self.prefix + key, value, "PX", max(1, int(ttl * 1000)))

    async def aclose(self) -> None:
        await self.client.aclose()
