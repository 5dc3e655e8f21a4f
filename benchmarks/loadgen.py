"""Closed-loop HTTP load generation for the benchmarks, always in a process of its own.

:func:`run_load` drives ``wrk`` when it is installed (``apt-get install -y wrk``), with a Lua
script that sets the POST body and prints one parseable result line. Without ``wrk`` it runs
this file as a script: an asyncio + aiohttp generator with N workers, each sending its next
request as soon as the previous answer has been read in full, or, with ``rate``, no sooner
than its share of a steady request rate allows (the soak run). The fallback also times the
first body bytes of every answer (for a stream: the first token, TTFT); ``wrk`` cannot.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

__all__ = ["COUNTER", "TOKEN", "LoadResult", "collect", "have_wrk", "run_load", "spawn_load"]

TOKEN = "sk-bench"  # default bearer token sent with every request
COUNTER = "{n}"  # replaced in each request body by a unique number, so no two are alike

_WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local head, tail, counter = [==[{head}]==], [==[{tail}]==], 0

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. counter .. tail)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int  # transport errors plus answers with status >= 400
    ttft_p50_ms: float | None = None  # first body bytes (aiohttp generator only)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    url: str, body: str, concurrency: int, duration: float, use_wrk: bool, token: str = TOKEN
) -> LoadResult:
    """Load ``url`` with ``concurrency`` connections for ``duration`` seconds.

    Every request carries ``Authorization: Bearer <token>``.
    """
    runner = _run_wrk if use_wrk else _run_aiohttp
    return runner(url, body, concurrency, duration, token)


def _run_wrk(url: str, body: str, concurrency: int, duration: float, token: str) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        head, tail = _split(body)
        script.write(_WRK_SCRIPT.format(head=head, tail=tail, token=token))
    try:
        seconds = max(1, round(duration))  # wrk takes whole seconds only
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s"]
        done = subprocess.run(
            [*command, "-s", script.name, url], capture_output=True, text=True, timeout=seconds + 30
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}{out}")
    line = next((x for x in out.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result line:\n{out}")
    requests, micros, p50, p95, p99, transport, status = (int(x) for x in line.split()[1:])
    return LoadResult(requests, micros / 1e6, p50 / 1e3, p95 / 1e3, p99 / 1e3, transport + status)


def _run_aiohttp(url: str, body: str, concurrency: int, duration: float, token: str) -> LoadResult:
    return collect(spawn_load(url, body, concurrency, duration, token))


def spawn_load(
    url: str, body: str, concurrency: int, duration: float, token: str = TOKEN, rate: float = 0
) -> subprocess.Popen[str]:
    """Start the aiohttp generator in its own process (``rate`` > 0: that many requests per
    second in all, steadily); :func:`collect` waits for its result."""
    command = [sys.executable, __file__, url, "--concurrency", str(concurrency)]
    command += ["--duration", str(duration), "--token", token, "--rate", str(rate), body]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(proc: subprocess.Popen[str]) -> LoadResult:
    """The result of a generator started by :func:`spawn_load` (waits for it to finish)."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{err[-2000:]}")
    return LoadResult(**json.loads(out))


_counter = itertools.count(1)


def _split(body: str) -> tuple[str, str]:
    """The body around COUNTER; the head ends in a per-run nonce, so runs never repeat."""
    head, _, tail = body.partition(COUNTER)
    return f"{head}{time.time_ns()}-", tail


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(slots=True)
class _Plan:
    url: str
    body: str
    token: str
    deadline: float
    interval: float  # seconds between one worker's requests; 0 = as fast as answers come
    latencies: list[float]
    firsts: list[float]  # time to the first body bytes


async def _worker(session: aiohttp.ClientSession, plan: _Plan, offset: float) -> int:
    errors = 0
    headers = {"content-type": "application/json", "authorization": f"Bearer {plan.token}"}
    head, tail = _split(plan.body)
    due = time.perf_counter() + offset
    while (started := time.perf_counter()) < plan.deadline:
        if plan.interval:
            if due > started:
                await asyncio.sleep(due - started)
                started = time.perf_counter()
            due = max(due + plan.interval, started)  # late: go on at once, no catch-up burst
        data = f"{head}{next(_counter)}{tail}".encode()
        try:
            async with session.post(url=plan.url, data=data, headers=headers) as response:
                first = await response.content.readany()
                plan.firsts.append(time.perf_counter() - started)
                while first:
                    first = await response.content.readany()
                errors += response.status >= 400
        except (aiohttp.ClientError, TimeoutError):
            errors += 1
            continue
        plan.latencies.append(time.perf_counter() - started)
    return errors


async def _aiohttp_load(
    url: str, body: str, concurrency: int, duration: float, token: str, rate: float = 0
) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        interval = concurrency / rate if rate > 0 else 0.0
        plan = _Plan(url, body, token, started + duration, interval, [], [])
        jobs = [_worker(session, plan, i * interval / concurrency) for i in range(concurrency)]
        errors = sum(await asyncio.gather(*jobs))
        elapsed = time.perf_counter() - started
    latencies = sorted(plan.latencies)
    p50, p95, p99 = (_percentile(latencies, f) * 1000 for f in (0.50, 0.95, 0.99))
    ttft = _percentile(sorted(plan.firsts), 0.50) * 1000
    return LoadResult(len(latencies), elapsed, p50, p95, p99, errors, ttft)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="aiohttp closed-loop load; COUNTER in the body becomes a unique number"
    )
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--token", default=TOKEN, help="bearer token for Authorization")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s in all (0: no cap)")
    parser.add_argument("body", help="the JSON request body")
    args = parser.parse_args()
    load = _aiohttp_load(
        args.url, args.body, args.concurrency, args.duration, args.token, args.rate
    )
    result = asyncio.run(load)
    sys.stdout.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
