"""In-memory vector index for the semantic cache: one matrix per scope, bounded and with TTLs.

A scope is (tenant, provider, model, context key): a lookup compares a question only with the
questions asked in exactly the same scope, so one tenant's answers never reach another and a
different conversation never matches. ``max_entries`` bounds the rows over all scopes; the
oldest row goes first. A scan is one matrix-vector product per lookup (~0.1 ms for a
thousand 384-dimension rows), which is why there is no approximate index.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meterline.cache.embedder import Vector

__all__ = ["Match", "VectorIndex"]


@dataclass(frozen=True, slots=True)
class Match:
    entry: str
    similarity: float


class _Scope:
    """Rows ``[0, size)`` of ``rows`` are live; a removed row is replaced by the last one."""

    __slots__ = ("entries", "expires", "rows", "size", "where")

    def __init__(self, dim: int) -> None:
        self.rows: NDArray[np.float32] = np.empty((4, dim), np.float32)
        self.expires: NDArray[np.float64] = np.empty(4, np.float64)
        self.entries: list[str] = []
        self.where: dict[str, int] = {}
        self.size = 0

    def append(self, entry: str, vector: Vector, expires: float) -> None:
        if self.size == len(self.rows):  # grow by doubling: amortised O(1) per entry
            self.rows = np.concatenate((self.rows, np.empty_like(self.rows)))
            self.expires = np.concatenate((self.expires, np.empty_like(self.expires)))
        self.rows[self.size] = vector
        self.expires[self.size] = expires
        self.entries.append(entry)
        self.where[entry] = self.size
        self.size += 1

    def drop(self, entry: str) -> None:
        index = self.where.pop(entry)
        last = self.size - 1
        moved = self.entries.pop()
        if index != last:
            self.rows[index] = self.rows[last]
            self.expires[index] = self.expires[last]
            self.entries[index] = moved
            self.where[moved] = index
        self.size = last

    def expired(self, now: float) -> list[str]:
        live = self.expires[: self.size]
        if self.size == 0 or live.min() >= now:
            return []
        return [self.entries[i] for i in np.flatnonzero(live < now)]


class VectorIndex:
    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._scopes: dict[str, _Scope] = {}
        # (scope, entry), oldest first
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def search(self, scope: str, vector: Vector, threshold: float) -> Match | None:
        """The most similar live entry of ``scope`` if its similarity reaches ``threshold``."""
        found = self._scopes.get(scope)
        if found is None:
            return None
        for entry in found.expired(time.monotonic()):
            self.remove(scope, entry)
        if found.size == 0:
            return None
        scores = found.rows[: found.size] @ vector
        best = int(np.argmax(scores))
        similarity = float(scores[best])
        return Match(found.entries[best], similarity) if similarity >= threshold else None

    def add(self, scope: str, entry: str, vector: Vector, ttl: float) -> None:
        self.remove(scope, entry)
        found = self._scopes.get(scope)
        if found is None:
            found = self._scopes[scope] = _Scope(vector.shape[0])
        found.append(entry, vector, time.monotonic() + ttl)
        self._order[(scope, entry)] = None
        while len(self._order) > self.max_entries:
            self.remove(*next(iter(self._order)))

    def remove(self, scope: str, entry: str) -> None:
        found = self._scopes.get(scope)
        if found is None or entry not in found.where:
            return
        found.drop(entry)
        self._order.pop((scope, entry), None)
        if found.size == 0:
            del self._scopes[scope]
