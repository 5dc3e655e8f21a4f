"""The counters file shared by the processes of one host: strict across real processes, safe
when a process dies holding the lock, and honest when it is full or is not a counters file.
(The operations themselves are in the contract suite, ``test_counters_contract.py``.)"""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import types
from pathlib import Path

import httpx
import openai
import pytest

from meterline.accounting.counters import Hold, Level, Window, WindowHit
from meterline.accounting.counters.base import INT64_MAX
from meterline.accounting.counters.shared import SharedCounters
from meterline.errors import CountersFull
from meterline.sim import OpenAISim
from tests.accounting.conftest import Accounted, create_key
from tests.accounting.shared_worker import hammer
from tests.fakes.harness import BackgroundLoop

TTL = 3600


def test_four_processes_never_pass_a_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "counters")
    SharedCounters.open(path).close()
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(4), spawn.Queue()
    procs = [spawn.Process(target=hammer, args=(path, 4_000, start, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    assert sum(a for a, _ in results) == 5_000 and sum(r for _, r in results) == 7_000
    assert all(r > 0 for _, r in results), results  # every process got some: they raced
    counters = SharedCounters.open(path)
    try:
        assert counters.admit_now([Window("tpm", None, "rpm", 10**6, TTL)]) == [
            (None, WindowHit(True, 5_001))
        ]
        assert counters.reserve_now([Hold("all", None, TTL)], 0) is None
        assert counters.settle_now([Hold("budget", None, TTL)], 0, 0) == [0]
    finally:
        counters.close()


def test_a_process_killed_holding_the_lock_blocks_no_other(tmp_path: Path) -> None:
    path = tmp_path / "counters"
    SharedCounters.open(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        counters = SharedCounters.open(path)  # waits on the lock until the kernel drops it
        assert counters.add_now("after", 1, TTL) == 1
        counters.close()
    finally:
        holder.kill()
        holder.communicate(timeout=10)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    from meterline.accounting.counters import shared

    fake = _Clock(1_800_000_000)
    monkeypatch.setattr(shared, "time", types.SimpleNamespace(time=fake.time))
    return fake


def _fill(counters: SharedCounters, ttl: int) -> list[str]:
    """Counters until no new one fits; their keys."""
    kept = []
    for i in range(1000):
        try:
            counters.add_now(f"fill-{i}", i + 1, ttl)
            kept.append(f"fill-{i}")
        except CountersFull:
            pass
    return kept


async def test_a_full_table_refuses_new_counters_and_changes_nothing(
    tmp_path: Path, clock: _Clock
) -> None:
    counters = SharedCounters.open(tmp_path / "counters", slots=16)
    try:
        kept = _fill(counters, ttl=60)
        assert len(kept) == 16  # every slot of the two buckets
        with pytest.raises(CountersFull, match="accounting.counters_slots"):
            counters.reserve_now([Hold(kept[0], None, TTL), Hold("new", None, TTL)], 5)
        assert counters.settle_now([Hold(kept[1], None, TTL)], 0, 7) == [7]  # old ones work
        with pytest.raises(CountersFull):
            counters.admit_now([Window("t", None, kept[2], 100, TTL),
                                Window("t", None, "new", 100, TTL)])  # fmt: skip
        # nothing of the refused operations stayed: no reservation, no hit on kept[2]
        numbers = [int(k.split("-")[1]) + 1 for k in kept[:3]]
        assert [counters.admit_now([Window(k, 10**9, "r", None, TTL)])[0][0] for k in kept[:3]] == (
            numbers
        )
        assert await counters.levels([kept[0], kept[1]]) == [Level(0, 0), Level(7, 0)]
        clock.now += 61  # every counter's window is over: their slots are free again
        assert counters.add_now("new", 1, TTL) == 1
        assert counters.admit_now([Window(kept[0], 10**9, "r2", None, TTL)]) == [(0, None)]
    finally:
        counters.close()


def test_an_expired_counter_starts_again_from_zero(tmp_path: Path, clock: _Clock) -> None:
    counters = SharedCounters.open(tmp_path / "counters", slots=16)
    try:
        counters.settle_now([Hold("day", None, 10)], 0, 42)
        clock.now += 10  # the last second of its ttl
        assert counters.settle_now([Hold("day", None, 10)], 0, 0) == [42]
        clock.now += 1  # past it: the slot is free, and the key starts again
        assert counters.settle_now([Hold("day", None, 10)], 0, 1) == [1]
    finally:
        counters.close()


async def test_an_overflow_raises_and_changes_nothing(tmp_path: Path) -> None:
    counters = SharedCounters.open(tmp_path / "counters", slots=16)
    try:
        await counters.seed("top", INT64_MAX - 1, TTL)
        holds = [Hold("ok", None, TTL), Hold("top", None, TTL)]
        with pytest.raises(OverflowError):
            await counters.settle(holds, 0, 2)
        with pytest.raises(OverflowError):
            await counters.reserve([Hold("ok", None, TTL)], INT64_MAX + 1)
        with pytest.raises(OverflowError):
            await counters.add("w", INT64_MAX + 1, TTL)
        assert await counters.levels(["ok", "top"]) == [Level(0, 0), Level(INT64_MAX - 1, 0)]
        assert await counters.get("w") == 0
    finally:
        await counters.aclose()


def test_only_a_counters_file_of_a_sound_size_opens(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not counters")
    with pytest.raises(ValueError, match="not a Meterline counters file"):
        SharedCounters.open(other)
    with pytest.raises(ValueError, match="multiple of 8"):
        SharedCounters.open(tmp_path / "counters", slots=20)
    SharedCounters.open(tmp_path / "counters", slots=32).close()
    again = SharedCounters.open(tmp_path / "counters")  # a made file keeps its own size
    assert again.slots == 32
    again.close()


def test_a_full_table_is_a_503_in_the_api_format(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    path = tmp_path / "gateway-counters"
    accounted = Accounted(bg, tmp_path, openai_sim, {})
    live = accounted.start(counters_file=str(path), counters_slots=16)
    key = create_key(live, rpm=100)["key"]
    counters = SharedCounters.open(path)
    try:
        _fill(counters, ttl=600)
        client = openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        counters.close()
        accounted.stop_all()
    assert caught.value.status_code == 503
    assert "no free slot" in caught.value.message


def test_health_reports_the_counters(
    accounted: Accounted, counters_backend: dict[str, str]
) -> None:
    live = accounted.start()
    body = httpx.get(f"{live.url}/health", timeout=10).json()
    backend = ("redis" if "redis_url" in counters_backend
               else "file" if "counters_file" in counters_backend else "memory")  # fmt: skip
    assert body["status"] == "ok" and body["counters"]["backend"] == backend
    assert body["counters"]["status"] == "ok"
