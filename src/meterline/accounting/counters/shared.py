"""Counters shared by the processes of one host, in a memory-mapped file.

``meterline serve --workers N`` without Redis keeps its counters here: the parent makes the
file (in ``/dev/shm`` where it can) and every worker maps it. Each operation takes an exclusive
``flock`` on the file, reads and writes the table, and lets go: a few microseconds with nothing
awaited in between, so each operation is as atomic across the processes as
:class:`~meterline.accounting.counters.memory.MemoryCounters` is within one, and just as strict.
The kernel drops the lock of a process that dies, so a worker killed mid-way blocks no other.
``flock`` belongs to an open file, so two instances in one process (or two threads) exclude
each other too.

The table is a header and ``slots`` entries in buckets of eight. A key is known by its 16-byte
BLAKE2b digest, which picks two buckets; the key lives in a slot of one of them. A slot holds
the digest, and apart from it the slot's expiry (Unix seconds), three 64-bit counters (spent,
reserved and a window's count) and whether a spend was ever set (``seed`` sets only counters
without one), so one key serves as a spend counter, a window, or both, as in memory. A slot
whose expiry has passed is free: keys name their window (a minute, a day) and a counter is
never wanted after its ``ttl``. When the sixteen slots of a key's two buckets all hold live
counters, the table is full for that key and the operation raises
:class:`~meterline.errors.CountersFull` (a 503 to the client) without changing any counter.

Values are exact signed 64-bit integers: limits past :data:`INT64_MAX` are clamped to it, and
an update that would pass it raises ``OverflowError`` before anything is written (as Redis).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import time
from hashlib import blake2b
from pathlib import Path

from meterline.accounting.counters.base import (
    INT64_MAX,
    Admitted,
    Hold,
    ImmediateCounters,
    Level,
    Window,
    WindowHit,
)
from meterline.errors import CountersFull

__all__ = ["DEFAULT_SLOTS", "SharedCounters", "slots_problem"]

DEFAULT_SLOTS = 131_072  # 7 MiB of table; a key and a tenant with limits use ~5 counters
_MAGIC = b"MLCNTR01"
_HEADER = struct.Struct("<8sQ")  # magic, slots
_HEAD = 64  # the digests start here
_DIGEST = 16
_BUCKET = 8  # slots per bucket
_BUCKET_BYTES = _BUCKET * _DIGEST
_VALUES = struct.Struct("<qqqqq")  # expiry, spent, reserved, window, spent-was-set (0 or 1)
_EXPIRY = struct.Struct("<q")
_COUNT = struct.Struct("<q")
_PAIR = struct.Struct("<qq")  # spent and reserved
_SPENT, _RESERVED, _WINDOW, _SPENT_SET = 8, 16, 24, 32  # offsets within a slot's values
_KNOWN = 10_000  # keys whose place is remembered before the memory is cleared


def slots_problem(slots: int) -> str | None:
    """What is wrong with a table of ``slots`` (whole buckets, two at least), if anything."""
    if slots < 2 * _BUCKET or slots % _BUCKET:
        return f"must be a multiple of {_BUCKET}, at least {2 * _BUCKET}"
    return None


def _size(slots: int) -> int:
    return _HEAD + slots * (_DIGEST + _VALUES.size)


def _checked(value: int) -> int:
    if value > INT64_MAX:
        raise OverflowError("a counter would pass 2**63 - 1")
    return value


class _Place:
    """A key's digest, the first slots of its two buckets, and where it was last found: the
    offsets of that slot's digest and values (-1: not yet)."""

    __slots__ = ("at", "buckets", "digest", "head")

    def __init__(self, digest: bytes, buckets: tuple[int, int]) -> None:
        self.digest = digest
        self.buckets = buckets
        self.head = -1
        self.at = -1


class SharedCounters(ImmediateCounters):
    """:class:`~meterline.accounting.counters.base.Counters` in a file that every process
    maps. Open with :meth:`open`; :meth:`aclose` unmaps it (the file stays for the others)."""

    def __init__(self, path: Path, fd: int, table: mmap.mmap, slots: int) -> None:
        self.path = path
        self.slots = slots
        self._fd = fd
        self._map = table
        self._buckets = slots // _BUCKET
        self._values = _HEAD + slots * _DIGEST  # where the values start
        # where the keys seen are: the same keys come back request after request
        self._places: dict[str, _Place] = {}

    @classmethod
    def open(cls, path: str | Path, slots: int = DEFAULT_SLOTS) -> SharedCounters:
        """Map ``path``, making the table (of ``slots``) if the file is new or empty; a file
        made before keeps its own size."""
        if problem := slots_problem(slots):
            raise ValueError(f"counter slots {problem}")
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one process makes the table; the others wait
            try:
                if os.fstat(fd).st_size == 0:
                    os.ftruncate(fd, _size(slots))
                    os.pwrite(fd, _HEADER.pack(_MAGIC, slots), 0)
                else:
                    head = os.pread(fd, _HEADER.size, 0)
                    magic, slots = _HEADER.unpack(head) if len(head) == _HEADER.size else (b"", 0)
                    if magic != _MAGIC or os.fstat(fd).st_size != _size(slots):
                        raise ValueError(f"{path} is not a Meterline counters file")
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            table = mmap.mmap(fd, _size(slots))
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, table, slots)

    # the table -----------------------------------------------------------------------------

    def _place(self, key: str) -> _Place:
        place = self._places.get(key)
        if place is None:
            if len(self._places) >= _KNOWN:
                self._places.clear()
            digest = blake2b(key.encode(), digest_size=_DIGEST).digest()
            first = int.from_bytes(digest[:8], "little") % self._buckets * _BUCKET
            second = int.from_bytes(digest[8:], "little") % self._buckets * _BUCKET
            place = self._places[key] = _Place(digest, (first, second))
        return place

    def _find(self, key: str, now: int) -> int:
        """The offset of ``key``'s values, or -1 if it has no live slot."""
        place = self._places.get(key) or self._place(key)
        table, head = self._map, place.head
        moved = head < 0 or table[head : head + _DIGEST] != place.digest  # or never seen
        if moved and not self._search(place):
            return -1
        at = place.at
        return -1 if _EXPIRY.unpack_from(table, at)[0] < now else at

    def _search(self, place: _Place) -> bool:
        """Find the slot holding ``place``'s digest (live or not) in its buckets; whether it
        is there (``place`` then says where)."""
        table, digest = self._map, place.digest
        for first in place.buckets:
            start = _HEAD + first * _DIGEST
            end = start + _BUCKET_BYTES
            at = table.find(digest, start, end)
            while at >= 0 and (at - _HEAD) % _DIGEST:  # straddles two slots' digests
                at = table.find(digest, at + 1, end)
            if at >= 0:
                self._seen(place, (at - _HEAD) // _DIGEST)
                return True
        return False

    def _seen(self, place: _Place, slot: int) -> None:
        place.head = _HEAD + slot * _DIGEST
        place.at = self._values + slot * _VALUES.size

    def _slot(self, key: str, now: int, ttl: int) -> int:
        """The offset of ``key``'s values; a new slot of zeros expiring ``ttl`` seconds from
        now when it has no live one. Raises :class:`CountersFull` when there is no room."""
        place = self._place(key)
        table, head = self._map, place.head
        if (head >= 0 and table[head : head + _DIGEST] == place.digest) or self._search(place):
            at = place.at
            if _EXPIRY.unpack_from(table, at)[0] < now:  # the key starts again in its slot
                _VALUES.pack_into(table, at, now + ttl, 0, 0, 0, 0)
            return at
        for first in place.buckets:
            for slot in range(first, first + _BUCKET):
                values = self._values + slot * _VALUES.size
                if _EXPIRY.unpack_from(table, values)[0] < now:  # never used, or expired
                    self._seen(place, slot)
                    table[place.head : place.head + _DIGEST] = place.digest
                    _VALUES.pack_into(table, values, now + ttl, 0, 0, 0, 0)
                    return values
        raise CountersFull(
            f"the shared counters file {self.path} has no free slot for a new counter "
            f"({self.slots} slots); restart with a larger accounting.counters_slots"
        )

    def _read(self, at: int, field: int) -> int:
        return 0 if at < 0 else _COUNT.unpack_from(self._map, at + field)[0]

    def _lock(self) -> int:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return int(time.time())

    def _unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    # the counters --------------------------------------------------------------------------

    def reserve_now(self, holds: list[Hold], amount: int) -> int | None:
        """:meth:`reserve` without awaiting."""
        now = self._lock()
        try:
            table = self._map
            found = [self._find(h.key, now) for h in holds]
            for i, (hold, at) in enumerate(zip(holds, found, strict=True)):
                spent, reserved = _PAIR.unpack_from(table, at + _SPENT) if at >= 0 else (0, 0)
                limit = hold.limit
                if limit is not None and spent + reserved + amount > min(limit, INT64_MAX):
                    return i
                _checked(reserved + amount)
            # every counter gets its slot before any is written, so a full table changes nothing
            slots = [at if at >= 0 else self._slot(h.key, now, h.ttl)
                     for h, at in zip(holds, found, strict=True)]  # fmt: skip
            for at in slots:
                _COUNT.pack_into(table, at + _RESERVED, self._read(at, _RESERVED) + amount)
            return None
        finally:
            self._unlock()

    async def reserve(self, holds: list[Hold], amount: int) -> int | None:
        return self.reserve_now(holds, amount)

    def settle_now(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        now = self._lock()
        try:
            table = self._map
            found = [self._find(h.key, now) for h in holds]
            for at in found:
                _checked(self._read(at, _SPENT) + actual)
            slots = [at if at >= 0 else self._slot(h.key, now, h.ttl)
                     for h, at in zip(holds, found, strict=True)]  # fmt: skip
            spent = []
            for at in slots:
                total, held = _PAIR.unpack_from(table, at + _SPENT)
                total += actual
                _PAIR.pack_into(table, at + _SPENT, total, max(0, held - reserved))
                _COUNT.pack_into(table, at + _SPENT_SET, 1)
                spent.append(total)
            return spent
        finally:
            self._unlock()

    async def settle(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        return self.settle_now(holds, reserved, actual)

    async def levels(self, keys: list[str]) -> list[Level]:
        now = self._lock()
        try:
            found = [self._find(key, now) for key in keys]
            return [Level(*_PAIR.unpack_from(self._map, at + _SPENT)) if at >= 0 else Level(0, 0)
                    for at in found]  # fmt: skip
        finally:
            self._unlock()

    async def seed(self, key: str, spent: int, ttl: int) -> None:
        now = self._lock()
        try:
            if not self._read(self._find(key, now), _SPENT_SET):
                at = self._slot(key, now, ttl)
                _COUNT.pack_into(self._map, at + _SPENT, _checked(spent))
                _COUNT.pack_into(self._map, at + _SPENT_SET, 1)
        finally:
            self._unlock()

    def add_now(self, key: str, amount: int, ttl: int) -> int:
        now = self._lock()
        try:
            at = self._slot(key, now, ttl)
            total = _checked(self._read(at, _WINDOW) + amount)
            _COUNT.pack_into(self._map, at + _WINDOW, total)
            return total
        finally:
            self._unlock()

    async def add(self, key: str, amount: int, ttl: int) -> int:
        return self.add_now(key, amount, ttl)

    async def get(self, key: str) -> int:
        now = self._lock()
        try:
            return self._read(self._find(key, now), _WINDOW)
        finally:
            self._unlock()

    def admit_now(self, windows: list[Window]) -> list[Admitted]:
        now = self._lock()
        hits: list[int] = []  # where a request was counted, undone if a later window fails
        try:
            out: list[Admitted] = []
            for w in windows:
                used = None
                if w.tokens_limit is not None:
                    used = self._read(self._find(w.tokens_key, now), _WINDOW)
                    if used >= min(w.tokens_limit, INT64_MAX):
                        out.append((used, None))
                        return out
                hit = None
                if w.requests_limit is not None:
                    hit = self._hit(w.requests_key, min(w.requests_limit, INT64_MAX), w.ttl, now,
                                    hits)  # fmt: skip
                out.append((used, hit))
                if hit is not None and not hit.allowed:
                    return out
            return out
        except CountersFull:
            for at in hits:
                _COUNT.pack_into(self._map, at + _WINDOW, self._read(at, _WINDOW) - 1)
            raise
        finally:
            self._unlock()

    def _hit(self, key: str, limit: int, ttl: int, now: int, hits: list[int]) -> WindowHit:
        at = self._find(key, now)
        count = self._read(at, _WINDOW)
        if count >= limit:
            return WindowHit(False, count)
        at = self._slot(key, now, ttl) if at < 0 else at
        _COUNT.pack_into(self._map, at + _WINDOW, count + 1)
        hits.append(at)
        return WindowHit(True, count + 1)

    async def admit(self, windows: list[Window]) -> list[Admitted]:
        return self.admit_now(windows)

    async def health(self) -> dict[str, object]:
        status = "error: closed" if self._map.closed else "ok"
        return {"backend": "file", "status": status, "path": str(self.path), "slots": self.slots}

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if not self._map.closed:
            self._map.close()
            os.close(self._fd)
