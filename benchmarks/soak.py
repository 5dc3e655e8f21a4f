"""The soak run: a steady request rate for minutes, the gateway's memory sampled as it goes.

Two aiohttp generators run side by side, one plain and one streaming, each at half the rate. The
gateway's RSS is read every ``interval`` seconds. What must hold: memory flat over the second
half (start-up, first allocations and caches filling up belong to the first half).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from loadgen import LoadResult, collect, spawn_load
from procs import machine_seconds, machine_share, memory_mb
from targets import Target, request_body

__all__ = ["SoakResult", "soak"]


@dataclass(frozen=True, slots=True)
class SoakResult:
    seconds: float
    rate: float  # requests per second asked for, plain and streamed together
    interval: float  # seconds between two RSS samples
    samples: list[tuple[float, float]]  # (seconds since start, RSS MiB)
    loads: list[LoadResult]  # plain, streamed
    steal_pct: float = 0.0  # machine CPU time the host of a virtual machine took away

    @property
    def requests(self) -> int:
        return sum(load.requests for load in self.loads)

    @property
    def errors(self) -> int:
        return sum(load.errors for load in self.loads)

    @property
    def second_half_growth(self) -> float:
        """RSS at the end minus RSS at the middle of the run, MiB."""
        if len(self.samples) < 2:
            return 0.0
        middle = self.samples[len(self.samples) // 2][1]
        return self.samples[-1][1] - middle

    @property
    def second_half_slope(self) -> float:
        """Least-squares RSS trend over the second half, MiB per minute."""
        half = self.samples[len(self.samples) // 2 :]
        if len(half) < 2:
            return 0.0
        mean_t = sum(t for t, _ in half) / len(half)
        mean_m = sum(m for _, m in half) / len(half)
        spread = sum((t - mean_t) ** 2 for t, _ in half)
        trend = sum((t - mean_t) * (m - mean_m) for t, m in half) / spread if spread else 0.0
        return trend * 60

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "rate": self.rate,
            "requests": self.requests,
            "errors": self.errors,
            "rss_samples": [{"t": t, "rss_mib": m} for t, m in self.samples],
            "second_half_growth_mib": self.second_half_growth,
            "second_half_slope_mib_per_min": self.second_half_slope,
            "loads": [asdict(load) for load in self.loads],
            "steal_pct": self.steal_pct,
        }


def soak(target: Target, seconds: float, rate: float, interval: float = 10.0) -> SoakResult:
    """Load ``target`` at ``rate`` requests/s for ``seconds``, sampling its RSS."""
    workers = max(2, min(32, round(rate / 100)))  # enough to keep the rate with queueing
    procs = [
        spawn_load(target.url, request_body(stream), workers, seconds, target.token, rate / 2)
        for stream in (False, True)
    ]
    started, stolen = time.monotonic(), machine_seconds()[1]
    samples = [(0.0, memory_mb(target.pid))]
    try:
        while any(p.poll() is None for p in procs):
            due = started + len(samples) * interval
            while time.monotonic() < due and any(p.poll() is None for p in procs):
                time.sleep(min(0.2, max(0.0, due - time.monotonic())))
            if time.monotonic() >= due:
                samples.append((round(time.monotonic() - started, 1), memory_mb(target.pid)))
        if time.monotonic() - started > samples[-1][0] + 1:  # the end, unless just sampled
            samples.append((round(time.monotonic() - started, 1), memory_mb(target.pid)))
        loads = [collect(p) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    steal_pct = machine_share(machine_seconds()[1] - stolen, time.monotonic() - started)
    return SoakResult(seconds, rate, interval, samples, loads, steal_pct)
