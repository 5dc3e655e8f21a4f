"""One contract for every ``Counters`` implementation: in memory, in a shared counters file,
and on the real Redis at 127.0.0.1:6379 (an unreachable Redis fails these tests; it does not
skip them)."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from meterline.accounting.counters import (
    Counters,
    Hold,
    Level,
    MemoryCounters,
    Window,
    WindowHit,
)
from meterline.accounting.counters.base import INT64_MAX
from meterline.accounting.counters.redis import RedisCounters
from meterline.accounting.counters.shared import SharedCounters
from meterline.resp import RedisReplyError
from tests.test_resp import Fake

REDIS_URL = os.environ.get("METERLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TTL = 3600
BIG = 10**16  # $10,000 in pico-dollars: past 2**53, where doubles stop being exact


async def _wipe(prefix: str) -> None:
    raw = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
    finally:
        await raw.aclose()


@pytest.fixture(params=["memory", "file", "redis"])
async def counters(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Counters]:
    if request.param != "redis":
        local = MemoryCounters() if request.param == "memory" else SharedCounters.open(
            tmp_path / "counters", slots=1024)  # fmt: skip
        yield local
        await local.aclose()
        return
    prefix = f"meterline-test:{secrets.token_hex(8)}:"
    shared = await RedisCounters.connect(REDIS_URL, prefix=prefix)
    try:
        yield shared
    finally:
        await shared.aclose()
        await _wipe(prefix)


@pytest.fixture
async def redis_counters() -> AsyncIterator[RedisCounters]:
    prefix = f"meterline-test:{secrets.token_hex(8)}:"
    shared = await RedisCounters.connect(REDIS_URL, prefix=prefix)
    try:
        yield shared
    finally:
        await shared.aclose()
        await _wipe(prefix)


async def _ttl(counters: Counters, key: str) -> int | None:
    """The Redis TTL of ``key``; None for in-memory counters (no TTL to observe)."""
    if not isinstance(counters, RedisCounters):
        return None
    raw = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        return int(await raw.ttl(counters.prefix + key))
    finally:
        await raw.aclose()


async def _assert_ttl(counters: Counters, key: str, ttl: int) -> None:
    left = await _ttl(counters, key)
    if left is not None:
        assert 0 < left <= ttl


# reserve ---------------------------------------------------------------------------------------


async def test_reserve_within_and_up_to_the_limit(counters: Counters) -> None:
    hold = Hold("b", 100, TTL)
    assert await counters.reserve([hold], 60) is None
    assert await counters.reserve([hold], 40) is None  # exactly fills the limit
    assert await counters.levels(["b"]) == [Level(0, 100)]
    assert await counters.reserve([hold], 1) == 0
    assert await counters.levels(["b"]) == [Level(0, 100)]


async def test_reserve_over_limit_counts_spent_and_reserved(counters: Counters) -> None:
    await counters.seed("b", 70, TTL)
    hold = Hold("b", 100, TTL)
    assert await counters.reserve([hold], 31) == 0
    assert await counters.reserve([hold], 20) is None
    assert await counters.reserve([hold], 11) == 0
    assert await counters.levels(["b"]) == [Level(70, 20)]


async def test_reserve_is_all_or_nothing(counters: Counters) -> None:
    await counters.seed("full", 95, TTL)
    await counters.seed("also-full", 100, TTL)
    holds = [Hold("roomy", 1000, TTL), Hold("full", 100, TTL), Hold("also-full", 100, TTL)]
    before = await counters.levels(["roomy", "full", "also-full"])
    assert await counters.reserve(holds, 10) == 1  # the FIRST hold without room, 0-based
    assert await counters.levels(["roomy", "full", "also-full"]) == before
    assert await counters.reserve(holds[:2], 5) is None
    assert await counters.levels(["roomy", "full"]) == [Level(0, 5), Level(95, 5)]
    assert await counters.reserve([Hold("roomy", 1000, TTL), holds[2]], 1) == 1


async def test_unlimited_holds_count_but_never_refuse(counters: Counters) -> None:
    holds = [Hold("alert", None, TTL), Hold("budget", 10, TTL)]
    assert await counters.reserve(holds[:1], 10**18) is None
    assert await counters.reserve(holds, 10) is None
    assert await counters.reserve(holds, 1) == 1
    assert await counters.levels(["alert", "budget"]) == [Level(0, 10**18 + 10), Level(0, 10)]


async def test_reserve_without_holds_is_allowed(counters: Counters) -> None:
    assert await counters.reserve([], 5) is None


async def test_missing_counters_read_as_zero(counters: Counters) -> None:
    assert await counters.levels(["nope", "nada"]) == [Level(0, 0), Level(0, 0)]
    assert await counters.levels([]) == []
    assert await counters.get("nope") == 0


# settle ----------------------------------------------------------------------------------------


async def test_settle_moves_reserved_to_spent(counters: Counters) -> None:
    holds = [Hold("a", 1000, TTL), Hold("b", None, TTL)]
    await counters.reserve(holds, 100)
    await counters.reserve(holds, 100)
    assert await counters.settle(holds, 100, 40) == [40, 40]  # cheaper than reserved
    assert await counters.levels(["a", "b"]) == [Level(40, 100), Level(40, 100)]
    await counters.seed("c", 1_000, TTL)
    # dearer than reserved; each hold's spend afterwards comes back
    assert await counters.settle([*holds, Hold("c", None, TTL)], 100, 250) == [290, 290, 1_250]
    assert await counters.levels(["a", "b"]) == [Level(290, 0), Level(290, 0)]
    assert await counters.reserve(holds, 711) == 0
    assert await counters.reserve(holds, 710) is None


async def test_reserved_never_goes_below_zero(counters: Counters) -> None:
    hold = Hold("a", 1000, TTL)
    await counters.reserve([hold], 30)
    await counters.settle([hold], 50, 50)
    assert await counters.levels(["a"]) == [Level(50, 0)]
    assert await counters.settle([Hold("fresh", None, TTL)], 20, 7) == [7]
    assert await counters.levels(["fresh"]) == [Level(7, 0)]
    assert await counters.settle([], 20, 7) == []


# seed ------------------------------------------------------------------------------------------


async def test_seed_only_sets_absent_counters(counters: Counters) -> None:
    await counters.seed("a", 500, TTL)
    await counters.seed("a", 9, TTL)
    assert await counters.levels(["a"]) == [Level(500, 0)]
    await counters.settle([Hold("b", None, TTL)], 0, 3)
    await counters.seed("b", 9, TTL)
    assert await counters.levels(["b"]) == [Level(3, 0)]
    await counters.reserve([Hold("c", None, TTL)], 4)  # a reservation is not a spend
    await counters.seed("c", 9, TTL)
    assert await counters.levels(["c"]) == [Level(9, 4)]


# windows ---------------------------------------------------------------------------------------


def _requests(key: str, limit: int, ttl: int = TTL) -> list[Window]:
    return [Window(f"tokens-of-{key}", None, key, limit, ttl)]


def _tokens(key: str, limit: int) -> list[Window]:
    return [Window(key, limit, f"requests-of-{key}", None, TTL)]


async def test_a_request_window_counts_up_to_its_limit(counters: Counters) -> None:
    assert await counters.admit(_requests("w", 2)) == [(None, WindowHit(True, 1))]
    assert await counters.admit(_requests("w", 2)) == [(None, WindowHit(True, 2))]  # at the limit
    assert await counters.admit(_requests("w", 2)) == [(None, WindowHit(False, 2))]
    assert await counters.get("w") == 2
    assert await counters.admit(_requests("fresh", 0)) == [(None, WindowHit(False, 0))]
    assert await counters.get("fresh") == 0


async def test_add_is_unconditional_and_a_token_window_reads_it(counters: Counters) -> None:
    assert await counters.add("t", 700, TTL) == 700
    assert await counters.add("t", 50, TTL) == 750
    assert await counters.get("t") == 750
    assert await counters.admit(_tokens("t", 751)) == [(750, None)]  # under the limit
    await counters.add("t", 1, TTL)
    assert await counters.admit(_tokens("t", 751)) == [(751, None)]  # at it: refused
    assert await counters.get("requests-of-t") == 0


async def test_ttls_are_applied(counters: Counters) -> None:
    await counters.reserve([Hold("r", 10, 100), Hold("u", None, 200)], 1)
    await counters.settle([Hold("s", None, 300)], 0, 1)
    await counters.seed("seeded", 1, 400)
    await counters.admit(_requests("h", 10, 500))
    await counters.add("a", 1, 600)
    for key, ttl in [("r", 100), ("u", 200), ("s", 300), ("seeded", 400), ("h", 500), ("a", 600)]:
        await _assert_ttl(counters, key, ttl)


async def test_admit_checks_each_window_in_order_and_stops_at_a_refusal(
    counters: Counters,
) -> None:
    tenant = Window("tpm:t", 100, "rpm:t", 3, TTL)
    key = Window("tpm:k", None, "rpm:k", 2, TTL)  # tokens not limited: not read
    tokens_only = Window("tpm:x", 50, "rpm:x", None, TTL)  # requests not limited: no hit
    windows = [tenant, key, tokens_only]
    assert await counters.admit(windows) == [(0, WindowHit(True, 1)), (None, WindowHit(True, 1)),
                                             (0, None)]  # fmt: skip
    assert await counters.admit(windows) == [(0, WindowHit(True, 2)), (None, WindowHit(True, 2)),
                                             (0, None)]  # fmt: skip
    # the key's window is full: the tenant's hit stands (as it would one scope at a time)
    assert await counters.admit(windows) == [(0, WindowHit(True, 3)), (None, WindowHit(False, 2))]
    assert [await counters.get(k) for k in ("rpm:t", "rpm:k", "rpm:x")] == [3, 2, 0]
    await counters.add("tpm:t", 100, TTL)  # the tenant's tokens reach their limit
    assert await counters.admit(windows) == [(100, None)]  # refused before any hit
    assert await counters.get("rpm:t") == 3
    assert await counters.admit([]) == []


async def test_concurrent_admits_never_pass_a_limit(counters: Counters) -> None:
    replicas = await _replicas(counters, 4)
    windows = [Window("tpm:t", None, "rpm:t", 1000, TTL), Window("tpm:k", 10**6, "rpm:k", 37, TTL)]
    try:
        results = await asyncio.gather(*(replicas[i % 4].admit(windows) for i in range(200)))
    finally:
        for replica in replicas[1:]:
            await replica.aclose()
    admitted = [r for r in results if r[-1][1] is not None and r[-1][1].allowed]
    assert len(admitted) == 37
    assert sorted(r[1][1].count for r in admitted if r[1][1]) == list(range(1, 38))
    assert await counters.get("rpm:t") == 200  # every one passed the tenant's window first


# exactness -------------------------------------------------------------------------------------


async def test_big_values_are_exact_to_the_unit(counters: Counters) -> None:
    # 2e16 + 3 is not a double (neighbours 2e16 and 2e16 + 4): float maths would get these wrong.
    await counters.seed("big", BIG + 1, TTL)
    hold = Hold("big", 2 * BIG + 3, TTL)
    assert await counters.reserve([hold], BIG + 3) == 0
    assert await counters.reserve([hold], BIG + 2) is None
    assert await counters.reserve([hold], 1) == 0
    assert await counters.levels(["big"]) == [Level(BIG + 1, BIG + 2)]
    assert await counters.settle([hold], BIG + 2, BIG + 1) == [2 * BIG + 2]  # exact, too
    assert await counters.levels(["big"]) == [Level(2 * BIG + 2, 0)]
    assert await counters.reserve([hold], 2) == 0
    assert await counters.reserve([hold], 1) is None
    await counters.settle([hold], 3, 1)  # reserved 1 - 3 floors at 0
    assert await counters.levels(["big"]) == [Level(2 * BIG + 3, 0)]


async def test_values_near_int64_max_are_exact(counters: Counters) -> None:
    await counters.seed("top", INT64_MAX - 10, TTL)
    hold = Hold("top", INT64_MAX, TTL)
    assert await counters.reserve([hold], 11) == 0
    assert await counters.reserve([hold], 10) is None
    assert await counters.levels(["top"]) == [Level(INT64_MAX - 10, 10)]
    assert await counters.add("w", INT64_MAX - 1, TTL) == INT64_MAX - 1
    assert await counters.admit(_requests("w", INT64_MAX)) == [(None, WindowHit(True, INT64_MAX))]
    assert await counters.admit(_requests("w", INT64_MAX)) == [(None, WindowHit(False, INT64_MAX))]
    assert await counters.admit(_tokens("w", INT64_MAX)) == [(INT64_MAX, None)]  # refused


async def test_big_window_counts_are_exact(counters: Counters) -> None:
    assert await counters.add("w", 2 * BIG + 2, TTL) == 2 * BIG + 2
    assert await counters.admit(_tokens("w", 2 * BIG + 3)) == [(2 * BIG + 2, None)]  # 1 left
    assert await counters.admit(_requests("w", 2 * BIG + 3)) == [
        (None, WindowHit(True, 2 * BIG + 3))
    ]
    assert await counters.admit(_requests("w", 2 * BIG + 3)) == [
        (None, WindowHit(False, 2 * BIG + 3))
    ]
    assert await counters.admit(_tokens("w", 2 * BIG + 3)) == [(2 * BIG + 3, None)]  # none left
    assert await counters.get("w") == 2 * BIG + 3


# concurrency -----------------------------------------------------------------------------------


async def _replicas(counters: Counters, n: int) -> list[Counters]:
    """``n`` clients over the same counters: separate connections (replicas) for Redis, the
    file opened again (each with a lock of its own) for a counters file."""
    if isinstance(counters, SharedCounters):
        return [counters, *(SharedCounters.open(counters.path) for _ in range(n - 1))]
    if not isinstance(counters, RedisCounters):
        return [counters] * n
    others = [await RedisCounters.connect(REDIS_URL, prefix=counters.prefix) for _ in range(n - 1)]
    return [counters, *others]


async def test_concurrent_reservations_never_pass_the_limit(counters: Counters) -> None:
    amount = BIG + 7  # odd and past 2**53: any float rounding would show
    limit = 11 * amount - 1  # room for exactly 10
    holds = [Hold("global", limit, TTL), Hold("seen", None, TTL)]
    replicas = await _replicas(counters, 4)
    rng = random.Random(7)

    async def request(i: int) -> bool:
        client = replicas[i % len(replicas)]
        await asyncio.sleep(rng.random() / 1000)
        if await client.reserve(holds, amount) is not None:
            return False
        await asyncio.sleep(rng.random() / 1000)  # other requests interleave while this one runs
        await client.settle(holds, amount, amount)
        return True

    try:
        won = await asyncio.gather(*(request(i) for i in range(200)))
    finally:
        for replica in replicas[1:]:
            await replica.aclose()
    assert sum(won) == 10
    spent = 10 * amount
    assert await counters.levels(["global", "seen"]) == [Level(spent, 0), Level(spent, 0)]
    assert spent <= limit


# Redis only ------------------------------------------------------------------------------------


async def test_redis_keys_carry_the_prefix(redis_counters: RedisCounters) -> None:
    await redis_counters.reserve([Hold("b", 10, TTL)], 1)
    await redis_counters.add("w", 1, TTL)
    raw = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        prefix = redis_counters.prefix
        assert sorted([k async for k in raw.scan_iter(match=f"{prefix}*")]) == [
            f"{prefix}b",
            f"{prefix}w",
        ]
        assert await raw.hgetall(f"{prefix}b") == {"reserved": "1"}
        assert await raw.get(f"{prefix}w") == "1"
    finally:
        await raw.aclose()


async def test_redis_overflow_raises_and_changes_nothing(redis_counters: RedisCounters) -> None:
    holds = [Hold("ok", 10, TTL), Hold("huge", None, TTL)]
    await redis_counters.reserve(holds[1:], INT64_MAX - 1)
    with pytest.raises(RedisReplyError, match="would overflow"):
        await redis_counters.reserve(holds, 2)
    assert await redis_counters.levels(["ok", "huge"]) == [Level(0, 0), Level(0, INT64_MAX - 1)]


async def test_redis_limits_past_int64_are_clamped(redis_counters: RedisCounters) -> None:
    hold = Hold("b", 2**70, TTL)
    assert await redis_counters.reserve([hold], INT64_MAX) is None
    assert await redis_counters.reserve([hold], 1) == 0


async def test_unreachable_redis_fails_at_connect() -> None:
    with pytest.raises(ConnectionError, match=r"cannot reach Redis at redis://u:\*\*\*@") as err:
        await RedisCounters.connect("redis://u:secret@127.0.0.1:1/0")
    assert "secret" not in str(err.value)


async def test_health_says_when_redis_stops_answering() -> None:
    async with Fake([(1, b"+PONG\r\n")]) as port:  # answers the first PING, then nothing
        counters = await RedisCounters.connect(f"redis://127.0.0.1:{port}/0")
        try:
            assert await counters.health() == {"backend": "redis", "status": "error: TimeoutError"}
        finally:
            await counters.aclose()


async def test_health_names_each_backend(counters: Counters) -> None:
    health = await counters.health()
    backend = {MemoryCounters: "memory", SharedCounters: "file", RedisCounters: "redis"}
    assert health["backend"] == backend[type(counters)] and health["status"] == "ok"
