"""The cache backend interface: bytes in, bytes out, with a time to live."""

from __future__ import annotations

from typing import Protocol

__all__ = ["CacheBackend"]


class CacheBackend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...
