"""A process of its own over a counters file (kept apart from the tests so that a spawned
process imports nothing else)."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from meterline.accounting.counters import Hold, Window
from meterline.accounting.counters.shared import SharedCounters

TTL = 3600


def hammer(path: str, rounds: int, start: Barrier, out: Queue[tuple[int, int]]) -> None:
    """Once every process is ready, try ``rounds`` requests against a window of 5,000 and
    a budget of 7,000; put how many of each got through."""
    counters = SharedCounters.open(path)
    window = [Window("tpm", None, "rpm", 5_000, TTL)]
    holds = [Hold("budget", 7_000, TTL), Hold("all", None, TTL)]
    admitted = reserved = 0
    start.wait()
    for _ in range(rounds):
        hit = counters.admit_now(window)[0][1]
        admitted += bool(hit and hit.allowed)
        reserved += counters.reserve_now(holds, 1) is None
    counters.close()
    out.put((admitted, reserved))
