"""The request-log writer alone: how many rows per second it writes, and whether the request
path ever waits on it, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/logwriter.py [--rate 5000] [--seconds 10]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--prefill 150000] [--random-ids]

Two measurements per database, in one event loop with the real :class:`LogWriter`:

* **capacity** — a full queue (``log.queue_size`` rows) submitted at once, then flushed: rows
  per second the writer drains;
* **sustained** — rows submitted at ``--rate`` per second for ``--seconds``, in 1 ms ticks, the
  way requests finish: rows written, the largest backlog, rows spilled to disk, the slowest
  ``submit()`` call, and the event loop's lag (how late a 1 ms timer fires: what every request
  in flight would wait while the writer holds the loop).

For PostgreSQL a throw-away database is created next to the one in ``--postgres`` and dropped
afterwards; SQLite uses a temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from meterline.pipeline import new_request_id
from meterline.settings import LogSettings
from meterline.store import LogWriter, open_engine
from meterline.store.schema import requests

__all__ = ["Result", "measure", "sample_row"]


@dataclass(frozen=True, slots=True)
class Result:
    database: str
    capacity_rows_per_s: float
    sustained_rate: float  # rows/s submitted
    sustained_rows_per_s: float  # rows/s written, submission start to last row in the database
    rows_written: int  # every row of both measurements, counted in the database
    rows_submitted: int
    max_backlog: int
    spilled: int
    submit_max_us: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float


def sample_row(n: int, random_ids: bool = False) -> dict[str, Any]:
    """A request-log row as the log stage builds it (every column filled in); ``random_ids``:
    ids of 32 random hex digits, as the gateway made them before NOTES.md row 29."""
    request_id = secrets.token_hex(16) if random_ids else new_request_id()  # time-ordered
    return {
        "id": request_id, "created_at": dt.datetime.now(dt.UTC),
        "tenant": "bench", "key_id": "key_bench", "surface": "openai", "provider": "openai",
        "model_requested": "gpt-4o-mini", "model": "gpt-4o-mini",
        "route_reason": "catalog: gpt-4o-mini served by openai", "status": "ok",
        "http_status": 200, "error": None, "stream": n % 2 == 0, "finish_reason": "stop",
        "input_tokens": 19, "output_tokens": 9, "cached_tokens": 0, "cache_write_tokens": 0,
        "reasoning_tokens": 0, "usage_estimated": False, "cost_pusd": 8_250_000,
        "latency_ms": 0.812, "ttft_ms": 0.5 if n % 2 == 0 else None,
        "metadata": {"app": "bench"}, "team": None, "user": None,
        "budget_remaining_pusd": 999_999_000_000, "cache_hit": False, "tokens_before": None,
        "tokens_after": None, "compression": None, "task_type": "chat", "complexity": 1,
        "language": None, "stack": None, "domain": None, "request_group_id": request_id,
        "attempt": 1, "experiment": None, "arm": None, "success": True,
    }  # fmt: skip


class _LagMonitor:
    """How late a 1 ms timer fires, over and over, while the writer works."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            self.lags.append(max(0.0, time.perf_counter() - due))

    def __enter__(self) -> _LagMonitor:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def _capacity(writer: LogWriter, rows: int, first: int, random_ids: bool) -> float:
    started = time.perf_counter()
    for n in range(first, first + rows):
        writer.submit(sample_row(n, random_ids))
    await writer.flush()
    return rows / (time.perf_counter() - started)


async def _sustained(
    writer: LogWriter, rate: float, seconds: float, first: int, random_ids: bool
) -> tuple[int, float, int, float, list[float]]:
    """Submit at ``rate`` for ``seconds``; (rows, rows/s written, max backlog, slowest
    submit in µs, loop lags)."""
    total, backlog, slowest = int(rate * seconds), 0, 0.0
    with _LagMonitor() as monitor:
        started = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            for n in range(first + sent, first + due):
                row = sample_row(n, random_ids)
                before = time.perf_counter()
                writer.submit(row)
                slowest = max(slowest, time.perf_counter() - before)
            sent = max(sent, due)
            backlog = max(backlog, writer.backlog)
            await asyncio.sleep(0.001)
        await writer.flush()
        elapsed = time.perf_counter() - started
    return total, total / elapsed, backlog, slowest * 1e6, sorted(monitor.lags)


async def measure(database_url: str, rate: float, seconds: float, spill_dir: Path,
                  prefill: int = 0, random_ids: bool = False) -> Result:  # fmt: skip
    """Both measurements against ``database_url`` (an empty database with the schema), after
    ``prefill`` rows written first (a table that has been logging for a while)."""
    engine = await open_engine(database_url)
    settings = LogSettings()
    writer = LogWriter(engine, settings, spill_dir)
    writer.start()
    try:
        for first in range(0, prefill, settings.queue_size):
            await _capacity(writer, min(settings.queue_size, prefill - first), first, random_ids)
        capacity = await _capacity(writer, settings.queue_size, prefill, random_ids)
        sent, written_rate, backlog, slowest, lags = await _sustained(
            writer, rate, seconds, prefill + settings.queue_size, random_ids
        )
    finally:
        await writer.close()
    async with engine.connect() as conn:
        written = int((await conn.execute(select(func.count()).select_from(requests))).scalar())
    await engine.dispose()
    lag_p99 = lags[int(0.99 * (len(lags) - 1))] * 1000 if lags else 0.0
    return Result(
        make_url(database_url).get_backend_name(), capacity, rate, written_rate, written,
        prefill + settings.queue_size + sent, backlog, writer.spilled, slowest,
        lag_p99, lags[-1] * 1000 if lags else 0.0,
    )  # fmt: skip


async def _with_postgres(admin_url: str, args: argparse.Namespace, spill: Path) -> Result:
    import asyncpg

    name = f"meterline_logbench_{secrets.token_hex(4)}"
    admin = make_url(admin_url)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.set(database=name).render_as_string(hide_password=False)
        return await measure(url, args.rate, args.seconds, spill, args.prefill, args.random_ids)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def _print(result: Result) -> None:
    for key, value in asdict(result).items():
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        sys.stdout.write(f"  {key:22} {shown}\n")


async def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="meterline-logbench-") as tmp:
        sqlite = f"sqlite:///{tmp}/log.db"
        results = [await measure(sqlite, args.rate, args.seconds, Path(tmp), args.prefill,
                                 args.random_ids)]  # fmt: skip
        if args.postgres:
            results.append(await _with_postgres(args.postgres, args, Path(tmp)))
    for result in results:
        sys.stdout.write(f"{result.database}\n")
        _print(result)
    lost = [r.database for r in results if r.rows_written != r.rows_submitted]
    if lost:
        sys.stdout.write(f"ROWS MISSING in {', '.join(lost)}\n")
    return 1 if lost else 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the request-log writer.")
    parser.add_argument("--rate", type=float, default=5000.0, help="rows/s submitted")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the sustained run")
    parser.add_argument("--postgres", help="an admin URL, e.g. postgresql://postgres@host/test")
    parser.add_argument("--prefill", type=int, default=0, help="rows written before measuring")
    parser.add_argument(
        "--random-ids",
        action="store_true",
        help="random request ids, as before NOTES.md row 29 (for comparison)",
    )
    import uvloop  # as under ``meterline serve``

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
