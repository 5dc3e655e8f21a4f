"""The counters interface: atomic spend reservations and rate-limit windows.

Three implementations with one contract test suite: :class:`MemoryCounters` (one process),
``SharedCounters`` (the worker processes of one host, through a memory-mapped file) and
``RedisCounters`` (any number of replicas; atomic server-side scripts). All amounts are
integers (pico-dollars for money, plain counts for requests and tokens), exact up to
:data:`INT64_MAX` (larger limits are clamped to it).

A *hold* names one counter (``key``) and its ``limit`` (``None`` = count only). Reserving an
amount against several holds is all-or-nothing: either every hold has room and each gets the
amount added to its ``reserved``, or none changes. Settling moves a reservation to ``spent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "INT64_MAX",
    "Admitted",
    "Counters",
    "Hold",
    "ImmediateCounters",
    "Level",
    "Window",
    "WindowHit",
]

INT64_MAX = 2**63 - 1


# Not frozen: several of each are made per request, and a frozen __init__ costs twice as much.
@dataclass(slots=True)
class Hold:
    key: str
    limit: int | None
    ttl: int  # seconds the counter must outlive its window


@dataclass(slots=True)
class Level:
    spent: int
    reserved: int


@dataclass(slots=True)
class WindowHit:
    allowed: bool
    count: int  # the window's count after this hit (or as it stands, if refused)


@dataclass(slots=True)
class Window:
    """A caller's two one-minute windows at one scope, checked together by ``admit``."""

    tokens_key: str
    tokens_limit: int | None  # None: tokens are not limited here (the window is not read)
    requests_key: str
    requests_limit: int | None  # None: requests are not limited here (no hit)
    ttl: int


Admitted = tuple[int | None, WindowHit | None]  # (tokens used, the request hit) of one window


class Counters(Protocol):
    async def reserve(self, holds: list[Hold], amount: int) -> int | None:
        """Reserve ``amount`` on every hold, atomically; the index of the first hold without
        room when refused, else ``None``."""
        ...

    async def settle(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        """Replace a reservation of ``reserved`` by the actual spend; each hold's ``spent``
        afterwards (so whoever checks thresholds need not read the counters again)."""
        ...

    async def levels(self, keys: list[str]) -> list[Level]: ...

    async def seed(self, key: str, spent: int, ttl: int) -> None:
        """Set ``spent`` for a counter that does not exist yet (rebuild after a restart)."""
        ...

    async def add(self, key: str, amount: int, ttl: int) -> int:
        """Add ``amount`` unconditionally (e.g. tokens used, known only afterwards)."""
        ...

    async def get(self, key: str) -> int: ...

    async def admit(self, windows: list[Window]) -> list[Admitted]:
        """Each window in order: its token count (when limited; at or past the limit refuses,
        and the list ends with that window), then a hit of one request (when limited; a
        refused hit ends the list). One atomic step on Redis, where it saves a round trip per
        window and check."""
        ...

    async def health(self) -> dict[str, object]:
        """``backend`` (``memory``, ``file`` or ``redis``) and ``status`` (``ok``, or what is
        wrong), for ``GET /health``."""
        ...

    async def aclose(self) -> None: ...


class ImmediateCounters:
    """Counters whose every operation completes without awaiting anything (in this process's
    memory, or a shared file's). Callers on the hot path use the ``*_now`` forms and save a
    coroutine, or a task where they cannot await."""

    def admit_now(self, windows: list[Window]) -> list[Admitted]:
        raise NotImplementedError

    def add_now(self, key: str, amount: int, ttl: int) -> int:
        raise NotImplementedError

    def settle_now(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        raise NotImplementedError
