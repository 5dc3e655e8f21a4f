"""In-process counters. Atomic because nothing awaits between the check and the update."""

from __future__ import annotations

import time

from meterline.accounting.counters.base import (
    Admitted,
    Hold,
    ImmediateCounters,
    Level,
    Window,
    WindowHit,
)

__all__ = ["MemoryCounters"]


class MemoryCounters(ImmediateCounters):
    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._windows: dict[str, int] = {}
        self._expiry: dict[str, float] = {}

    def _touch(self, key: str, ttl: int) -> None:
        """Give a new counter its expiry. Keys name their window (a day, a minute) and ``ttl``
        runs to the window's end plus a grace, so the first touch sets the right time."""
        if key not in self._expiry:
            self._expiry[key] = time.monotonic() + ttl
            if len(self._expiry) > 10_000:
                self._sweep()

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, at in self._expiry.items() if at < now]:
            for table in (self._spent, self._reserved, self._windows, self._expiry):
                table.pop(key, None)

    async def reserve(self, holds: list[Hold], amount: int) -> int | None:
        for i, hold in enumerate(holds):
            used = self._spent.get(hold.key, 0) + self._reserved.get(hold.key, 0)
            if hold.limit is not None and used + amount > hold.limit:
                return i
        for hold in holds:
            self._reserved[hold.key] = self._reserved.get(hold.key, 0) + amount
            self._touch(hold.key, hold.ttl)
        return None

    async def settle(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        return self.settle_now(holds, reserved, actual)

    def settle_now(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        """:meth:`settle` without awaiting (callers that cannot await need no task for it)."""
        spent = []
        for hold in holds:
            self._reserved[hold.key] = max(0, self._reserved.get(hold.key, 0) - reserved)
            self._spent[hold.key] = now = self._spent.get(hold.key, 0) + actual
            self._touch(hold.key, hold.ttl)
            spent.append(now)
        return spent

    async def levels(self, keys: list[str]) -> list[Level]:
        return [Level(self._spent.get(k, 0), self._reserved.get(k, 0)) for k in keys]

    async def seed(self, key: str, spent: int, ttl: int) -> None:
        if key not in self._spent:
            self._spent[key] = spent
            self._touch(key, ttl)

    def _hit(self, key: str, limit: int, ttl: int) -> WindowHit:
        """One more in a window, if it stays within ``limit``."""
        count = self._windows.get(key, 0)
        if count >= limit:
            return WindowHit(False, count)
        self._windows[key] = count + 1
        self._touch(key, ttl)
        return WindowHit(True, count + 1)

    async def add(self, key: str, amount: int, ttl: int) -> int:
        return self.add_now(key, amount, ttl)

    def add_now(self, key: str, amount: int, ttl: int) -> int:
        """:meth:`add` without awaiting."""
        self._windows[key] = self._windows.get(key, 0) + amount
        self._touch(key, ttl)
        return self._windows[key]

    async def get(self, key: str) -> int:
        return self._windows.get(key, 0)

    async def admit(self, windows: list[Window]) -> list[Admitted]:
        return self.admit_now(windows)

    def admit_now(self, windows: list[Window]) -> list[Admitted]:
        """:meth:`admit` without awaiting."""
        out: list[Admitted] = []
        for w in windows:
            used = None
            if w.tokens_limit is not None:
                used = self._windows.get(w.tokens_key, 0)
                if used >= w.tokens_limit:
                    out.append((used, None))
                    return out
            hit = None
            if w.requests_limit is not None:
                hit = self._hit(w.requests_key, w.requests_limit, w.ttl)
            out.append((used, hit))
            if hit is not None and not hit.allowed:
                return out
        return out

    async def health(self) -> dict[str, object]:
        return {"backend": "memory", "status": "ok"}

    async def aclose(self) -> None:
        """Nothing to release."""
