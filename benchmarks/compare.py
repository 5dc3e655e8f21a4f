"""Meterline's overhead over a fast upstream, optionally side by side with LiteLLM's proxy.

    .venv/bin/python benchmarks/compare.py [--against litellm] [--quick] [--duration 10]
    .venv/bin/python benchmarks/compare.py --soak 600 [--soak-rate 400]
    .venv/bin/python benchmarks/compare.py --workers 1,2 [--counters file|redis] [--redis-url URL]

The fake upstream (``fastupstream.py``) and Meterline (every default stage on, cache off: see
``targets.py``) always run; ``--against litellm`` adds LiteLLM's proxy (``litellm_proxy.py``).
``wrk`` (or the aiohttp fallback of ``loadgen.py``) drives each in turn, streaming and not, at
each concurrency, with unique prompts. One table is printed (``--json`` also writes it as
JSON); every child process is stopped on exit, error and Ctrl-C. ``--soak`` runs a steady rate
instead and prints the gateway's memory over time (``soak.py``). ``--workers`` loads Meterline
served by each number of worker processes in turn (``serve --workers``; the counters of every
one of them in a counters file, or in Redis, as several workers need) and prints req/s against
the first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sqlite3
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from litellm_proxy import LITELLM_VERSION, ensure_litellm, start_litellm
from loadgen import LoadResult, have_wrk, run_load
from procs import cpu_seconds, group_pids, machine_seconds, machine_share, memory_mb
from report import console, print_results, print_scaling, print_soak
from soak import soak
from targets import HERE, Target, check_answers, request_body, start_meterline, start_upstream

__all__ = ["Row", "main"]


@dataclass(frozen=True, slots=True)
class Row:
    target: str
    stream: bool
    concurrency: int
    load: LoadResult
    cpu_per_1k: float  # CPU seconds the target's server spent per 1,000 requests
    other_pct: float  # share of the machine's CPU used by processes outside the benchmark
    steal_pct: float  # share of the machine's CPU time the host took away (virtual machines)
    ttft_ms: float | None  # p50 time to the first body bytes (streams only)
    probe_requests: int = 0  # requests of the TTFT probe (with wrk), served but not measured


def server_cpu(pid: int) -> float:
    """CPU seconds of a server and the worker processes it forked."""
    return sum(cpu_seconds(p) for p in group_pids(pid))


def server_rss(pid: int) -> float:
    """RSS (MiB) of a server and the worker processes it forked."""
    return sum(memory_mb(p) for p in group_pids(pid))


def ours_and_machine(pids: list[int]) -> tuple[float, float, float]:
    """CPU seconds of the servers, finished load generators and this process; the machine's
    busy and stolen seconds."""
    children, me = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
    servers = sum(server_cpu(pid) for pid in pids)
    ours = servers + children.ru_utime + children.ru_stime + me.user + me.system
    return ours, *machine_seconds()


def measure(
    target: Target, pids: list[int], stream: bool, concurrency: int, args: argparse.Namespace
) -> Row:
    """One load run against ``target``; CPU from its own process, ``pids`` are all servers."""
    label = f"  {target.name:9} stream={'yes' if stream else 'no':3} c={concurrency:<3}"
    console.print(label, end="")
    cpu_before, (ours_before, busy_before, stolen_before) = (server_cpu(target.pid),
                                                             ours_and_machine(pids))  # fmt: skip
    started = time.monotonic()
    body = request_body(stream)
    load = run_load(target.url, body, concurrency, args.duration, args.wrk, target.token)
    cpu = server_cpu(target.pid) - cpu_before
    ours_after, busy_after, stolen_after = ours_and_machine(pids)
    others = (busy_after - busy_before) - (ours_after - ours_before)
    elapsed = time.monotonic() - started
    per_1k = cpu / load.requests * 1000 if load.requests else 0.0
    ttft, probed = load.ttft_p50_ms, 0
    if stream and ttft is None:  # wrk cannot see the first token: a short aiohttp probe can
        probe = run_load(target.url, body, concurrency, max(1.0, args.duration / 5), False,
                         target.token)  # fmt: skip
        ttft, probed = probe.ttft_p50_ms, probe.requests
    console.print(f" {load.rps:9,.0f} req/s  p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms")
    return Row(target.name, stream, concurrency, load, per_1k,
               machine_share(max(0.0, others), elapsed),
               machine_share(stolen_after - stolen_before, elapsed), ttft if stream else None,
               probed)  # fmt: skip


def logged_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def start_targets(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> list[Target]:
    """direct, meterline and (with ``--against litellm``) litellm, each checked once."""
    upstream, port = start_upstream(stack, tmp)
    targets = [upstream, start_meterline(stack, tmp, port)]
    if args.against == "litellm":
        targets.append(start_litellm(stack, tmp, args.litellm_bin, port))
    for target in targets:
        check_answers(target)
    return targets


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start the servers, warm them up, measure every row, print and return the results."""
    rows: list[Row] = []
    with ExitStack() as stack:
        targets = start_targets(stack, tmp, args)
        rss_before = {t.name: server_rss(t.pid) for t in targets[1:]}
        served = warm_up(targets, args)
        pids = [t.pid for t in targets]
        for stream in (False, True):
            for concurrency in args.concurrency:
                rows += [measure(t, pids, stream, concurrency, args) for t in targets]
        rss_after = {t.name: server_rss(t.pid) for t in targets[1:]}
    for row in rows:
        served[row.target] += row.load.requests + row.probe_requests
    memory = {
        name: {"rss_before_mib": rss_before[name], "rss_after_mib": rss_after[name],
               "requests_served": served[name]}
        for name in rss_before
    }  # fmt: skip
    logged = logged_rows(tmp / "bench.db")
    print_results(rows, memory, logged)
    return {"rows": [row_json(r) for r in rows], "memory": memory, "meterline_log_rows": logged}


def warm_up(targets: list[Target], args: argparse.Namespace) -> dict[str, int]:
    """Each target loaded plain and streamed for ``--warmup`` seconds; requests served by each
    (counting the two of ``check_answers``)."""
    served: dict[str, int] = {}
    for target in targets:
        for stream in (False, True):
            warm = run_load(target.url, request_body(stream), max(args.concurrency), args.warmup,
                            args.wrk, target.token)  # fmt: skip
            served[target.name] = served.get(target.name, 2) + warm.requests
    return served


def run_scaling(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Meterline served by each number of workers in ``--workers``, every one with its
    counters where ``--counters`` says (one worker too), so that the rows differ in the workers
    alone; loaded in turn at each concurrency, plain and streamed."""
    rows: list[Row] = []
    with ExitStack() as stack:
        upstream, port = start_upstream(stack, tmp)
        targets = []
        for workers in args.workers:
            where = tmp / f"workers-{workers}"
            where.mkdir()
            redis_url = args.redis_url if args.counters == "redis" else None
            target = start_meterline(stack, where, port, workers=workers, redis_url=redis_url,
                                     counters_file=args.counters == "file",
                                     name=f"{workers}w")  # fmt: skip
            check_answers(target)
            targets.append(target)
        served = warm_up(targets, args)
        pids = [upstream.pid] + [t.pid for t in targets]
        for stream in (False, True):
            for concurrency in args.concurrency:
                rows += [measure(t, pids, stream, concurrency, args) for t in targets]
        rss = {t.name: server_rss(t.pid) for t in targets}
    for row in rows:
        served[row.target] += row.load.requests + row.probe_requests
    logged = {f"{n}w": logged_rows(tmp / f"workers-{n}" / "bench.db") for n in args.workers}
    print_scaling(rows, args.workers, rss, served, logged, args.counters)
    return {"rows": [row_json(r) for r in rows], "rss_mib": rss, "requests_served": served,
            "log_rows": logged, "counters": args.counters}  # fmt: skip


def row_json(row: Row) -> dict[str, Any]:
    return {"target": row.target, "stream": row.stream, "concurrency": row.concurrency,
            **asdict(row.load), "rps": row.load.rps, "cpu_s_per_1k": row.cpu_per_1k,
            "other_cpu_pct": row.other_pct, "steal_pct": row.steal_pct,
            "ttft_ms": row.ttft_ms}  # fmt: skip


def run_soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Meterline alone at a steady rate for ``--soak`` seconds; its RSS as a series."""
    with ExitStack() as stack:
        upstream, port = start_upstream(stack, tmp)
        meterline = start_meterline(stack, tmp, port)
        check_answers(meterline)
        result = soak(meterline, args.soak, args.soak_rate, args.soak_interval)
    print_soak(result)
    return {"soak": result.to_json(), "meterline_log_rows": logged_rows(tmp / "bench.db")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line; ``--quick`` is a short smoke run at concurrency 1 and 10."""
    parser = argparse.ArgumentParser(description="Meterline's overhead; optionally vs LiteLLM.")
    parser.add_argument("--against", choices=["litellm"], help="also load LiteLLM's proxy")
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,10,50", help="comma-separated, e.g. 1,10,50")
    parser.add_argument("--quick", action="store_true", help="2 s per measurement, c=1,10")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per target and mode")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "aiohttp"], default="auto")
    parser.add_argument("--workdir", type=Path, default=HERE.parent / ".bench")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--soak",
        type=float,
        nargs="?",
        const=600.0,
        metavar="SECONDS",
        help="soak run instead: a steady rate, RSS every 10 s (default 600 s)",
    )
    parser.add_argument("--soak-rate", type=float, default=400.0, help="requests/s in the soak")
    parser.add_argument("--soak-interval", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--workers", help="scaling run instead: worker counts, e.g. 1,2")
    parser.add_argument("--counters", choices=["file", "redis"], default="file",
                        help="where --workers keeps the shared counters")  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                        help="the counters' Redis for --workers --counters redis")  # fmt: skip
    args = parser.parse_args(argv)  # fmt: skip
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.workers:
        args.workers = [int(n) for n in args.workers.split(",") if n.strip()]
        if args.against or args.soak:
            parser.error("--workers is a run of its own: not with --against or --soak")
    if args.quick:
        args.duration = 2
        args.concurrency = [c for c in args.concurrency if c <= 10] or args.concurrency[:1]
    if args.warmup is None:
        args.warmup = 1.0 if args.quick or args.duration < 2 else 2.0
    args.wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and have_wrk())
    if args.loadgen == "wrk" and not have_wrk():
        parser.error("wrk is not installed (apt-get install -y wrk)")
    return args


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Benchmark (or soak); 130 on Ctrl-C, 1 on a failed setup."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background, where it is ignored
    try:
        if args.against == "litellm" and not args.soak:
            args.litellm_bin = ensure_litellm(args.workdir / "litellm-venv", console.print)
        n = len(args.workers) if args.workers else 3 if args.against else 2
        runs = args.soak or 2 * n * (len(args.concurrency) * args.duration + args.warmup)
        versus = f"LiteLLM {LITELLM_VERSION}; " if args.against and not args.soak else ""
        loadgen = "aiohttp" if args.soak or not args.wrk else "wrk"
        console.print(f"{versus}load generator: {loadgen}; "
                      f"~{runs:.0f} s of load on {os.cpu_count()} core(s)")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="meterline-bench-") as tmp:
            job = run_soak if args.soak else run_scaling if args.workers else run
            results = job(args, Path(tmp))
    except KeyboardInterrupt:
        console.print("\ninterrupted; servers stopped")
        return 130
    except RuntimeError as error:
        console.print(f"[red]error:[/red] {error}")
        return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
