"""An in-process LRU cache bounded by entry count and by total bytes."""

from __future__ import annotations

import time
from collections import OrderedDict

__all__ = ["MemoryCache"]


class MemoryCache:
    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if key in self._items:
            self._drop(key)
        if len(value) > self.max_bytes:
            return
        self._items[key] = (time.monotonic() + ttl, value)
        self._bytes += len(value)
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, key: str) -> None:
        _, value = self._items.pop(key)
        self._bytes -= len(value)

    def __len__(self) -> int:
        return len(self._items)

    async def aclose(self) -> None:
        self._items.clear()
        self._bytes = 0
