"""Gateway overhead: the same load sent straight to a fast fake upstream, then through Meterline.

    .venv/bin/python benchmarks/overhead.py [--duration 10] [--concurrency 1,10,50] [--quick]

Three kinds of process, all on 127.0.0.1: the fake OpenAI upstream (``fastupstream.py``, answers
from precomputed bytes), the gateway (``meterline serve`` with a temporary YAML config and
SQLite request log) and the load generator (``wrk``, or ``loadgen.py``'s aiohttp fallback). For
every concurrency, streaming and not, it measures direct and gateway req/s and p50/p99 latency,
and prints the difference, the CPU seconds each server spent per 1,000 requests and the
gateway's memory. All child processes are stopped on exit, Ctrl-C and errors alike.
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
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from loadgen import COUNTER, TOKEN, LoadResult, have_wrk, run_load
from procs import child, cpu_seconds, free_port, machine_busy_seconds, memory_mb, wait_ready
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
MODEL = "gpt-4o-mini"
# Every request differs (COUNTER), so the response cache cannot answer: this measures forwarding.
MESSAGES = [{"role": "user", "content": f"Say hello in one short sentence. #{COUNTER}"}]
console = Console(width=max(120, Console().width))  # wide enough for the table


@dataclass(frozen=True, slots=True)
class Row:
    mode: str  # "direct" or "gateway"
    stream: bool
    concurrency: int
    load: LoadResult
    cpu_per_1k: float  # CPU seconds the measured server spent per 1,000 requests
    other_pct: float  # share of the machine's CPU that processes outside the benchmark used


@dataclass(frozen=True, slots=True)
class Servers:
    upstream_pid: int
    gateway_pid: int
    direct_url: str
    gateway_url: str


def request_body(stream: bool) -> str:
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 32}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(body)


def gateway_config(tmp: Path, upstream_port: int) -> Path:
    path = tmp / "meterline.yaml"
    path.write_text(
        "providers:\n"
        "  - name: openai\n"
        "    type: openai\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "    api_key: sk-bench\n"
    )
    return path


def gateway_env(tmp: Path) -> dict[str, str]:
    """The caller's environment minus provider keys and Meterline settings that would leak in."""
    prefixes = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "OLLAMA_", "METERLINE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | {"METERLINE_HOME": str(tmp)}


def post(url: str, body: str, token: str = TOKEN) -> bytes:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    data = body.replace(COUNTER, str(time.time_ns())).encode()
    request = urllib.request.Request(url, data, headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def check_answers(url: str, token: str = TOKEN) -> None:
    """One plain and one streamed request, so a broken setup fails loudly, not as fast errors."""
    answer = json.loads(post(url, request_body(stream=False), token))
    if answer.get("object") != "chat.completion" or not answer.get("usage"):
        raise RuntimeError(f"{url}: unexpected answer {answer}")
    events = post(url, request_body(stream=True), token).decode()
    if "chat.completion.chunk" not in events or '"usage":{' not in events.replace(" ", ""):
        raise RuntimeError(f"{url}: unexpected stream {events[:500]}")
    if not events.rstrip().endswith("data: [DONE]"):
        raise RuntimeError(f"{url}: stream does not end with [DONE]")


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    server_cpu: float  # the measured server
    machine_busy: float  # every process on the machine
    ours: float  # both servers, finished load generators and this process


def snapshot(servers: Servers, pid: int) -> Snapshot:
    children, me = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
    servers_cpu = cpu_seconds(servers.upstream_pid) + cpu_seconds(servers.gateway_pid)
    ours = servers_cpu + children.ru_utime + children.ru_stime + me.user + me.system
    return Snapshot(time.monotonic(), cpu_seconds(pid), machine_busy_seconds(), ours)


def measure(
    servers: Servers, mode: str, stream: bool, concurrency: int, args: argparse.Namespace
) -> Row:
    console.print(f"  {mode:7} stream={'yes' if stream else 'no':3} c={concurrency:<3}", end="")
    url, pid = (servers.direct_url, servers.upstream_pid)
    if mode == "gateway":
        url, pid = (servers.gateway_url, servers.gateway_pid)
    before = snapshot(servers, pid)
    load = run_load(url, request_body(stream), concurrency, args.duration, args.wrk)
    after = snapshot(servers, pid)
    cpu = after.server_cpu - before.server_cpu
    per_1k = cpu / load.requests * 1000 if load.requests else 0.0
    others = (after.machine_busy - before.machine_busy) - (after.ours - before.ours)
    other_pct = max(0.0, others) / ((after.at - before.at) * (os.cpu_count() or 1)) * 100
    console.print(f" {load.rps:9,.0f} req/s  p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms")
    return Row(mode, stream, concurrency, load, per_1k, other_pct)


def overhead_cells(row: Row, direct: Row | None) -> list[str]:
    if row.mode == "direct" or direct is None:
        return ["", "", ""]
    ratio = row.load.rps / direct.load.rps if direct.load.rps else 0.0
    return [
        f"{row.load.p50_ms - direct.load.p50_ms:+.2f}",
        f"{row.load.p99_ms - direct.load.p99_ms:+.2f}",
        f"{ratio:.3f}",
    ]


def results_table(rows: list[Row]) -> Table:
    table = Table(
        title="Meterline gateway overhead (direct = fake upstream alone)",
        caption="Δ and ratio: gateway vs direct at the same concurrency. CPU s/1k: CPU seconds "
        "the measured server (fake upstream or gateway) used per 1,000 requests. other CPU: "
        "share of the machine used by processes outside the benchmark (should be ~0).",
    )
    for name in ("mode", "stream", "conc", "req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(name, justify="left" if name in ("mode", "stream") else "right")
    for name in ("Δp50 ms", "Δp99 ms", "rps ratio", "CPU s/1k", "other CPU"):
        table.add_column(name, justify="right")
    directs = {(r.stream, r.concurrency): r for r in rows if r.mode == "direct"}
    for row in rows:
        load = row.load
        table.add_row(
            row.mode,
            "yes" if row.stream else "no",
            str(row.concurrency),
            f"{load.rps:,.0f}",
            f"{load.p50_ms:.2f}",
            f"{load.p99_ms:.2f}",
            str(load.errors),
            *overhead_cells(row, directs.get((row.stream, row.concurrency))),
            f"{row.cpu_per_1k:.2f}",
            f"{row.other_pct:.0f}%",
        )
    return table


def warm_up(url: str, args: argparse.Namespace) -> None:
    for stream in (False, True):
        run_load(url, request_body(stream), max(args.concurrency), args.warmup, args.wrk)


def run(args: argparse.Namespace, tmp: Path) -> None:
    up_port, gw_port = free_port(), free_port()
    direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    gateway_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    serve = [sys.executable, "-m", "meterline.cli", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(gw_port), "--config", str(gateway_config(tmp, up_port))]
    serve += ["--database-url", f"sqlite:///{tmp / 'bench.db'}", "--log-level", "warning"]
    rows: list[Row] = []
    with ExitStack() as stack:
        upstream = [sys.executable, str(HERE / "fastupstream.py"), "--port", str(up_port)]
        up_pid = stack.enter_context(child(upstream, tmp / "upstream.log"))
        wait_ready(f"http://127.0.0.1:{up_port}/health", up_pid, tmp / "upstream.log")
        gw_pid = stack.enter_context(child(serve, tmp / "gateway.log", gateway_env(tmp)))
        wait_ready(f"http://127.0.0.1:{gw_port}/health", gw_pid, tmp / "gateway.log")
        servers = Servers(up_pid, gw_pid, direct_url, gateway_url)
        for url in (direct_url, gateway_url):
            check_answers(url)
        rss_before = memory_mb(gw_pid)
        for url in (direct_url, gateway_url):
            warm_up(url, args)
        for stream in (False, True):
            for concurrency in args.concurrency:
                for mode in ("direct", "gateway"):
                    rows.append(measure(servers, mode, stream, concurrency, args))
        rss_after, rss_peak = memory_mb(gw_pid), memory_mb(gw_pid, "VmHWM")
    console.print(results_table(rows))
    if max(r.other_pct for r in rows) > 5:
        console.print("[yellow]warning:[/yellow] other processes used the CPU during the run "
                      "(see 'other CPU'); those rows are low and noisy")  # fmt: skip
    console.print(
        f"gateway RSS: {rss_before:.1f} MiB after start-up, {rss_after:.1f} MiB after the runs "
        f"(peak {rss_peak:.1f} MiB)"
    )
    sent = sum(r.load.requests for r in rows if r.mode == "gateway")
    console.print(f"request-log rows written: {logged_rows(tmp / 'bench.db'):,} "
                  f"(measured gateway requests: {sent:,}, plus warm-up and checks)")  # fmt: skip


def logged_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure Meterline's overhead over its upstream.")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,10,50", help="comma-separated, e.g. 1,10,50")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s per measurement")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "aiohttp"], default="auto")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.quick:
        args.duration = 1.0
        args.concurrency = sorted({args.concurrency[0], args.concurrency[-1]})
    args.warmup = 1.0 if args.quick else 2.0
    args.wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and have_wrk())
    if args.loadgen == "wrk" and not have_wrk():
        parser.error("wrk is not installed (apt-get install -y wrk)")
    return args


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background, where it is ignored
    runs = 4 * len(args.concurrency) * args.duration + 4 * args.warmup
    console.print(f"load generator: {'wrk' if args.wrk else 'aiohttp (wrk not found)'}; "
                  f"about {runs:.0f} s of load on {os.cpu_count()} core(s)")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="meterline-bench-") as tmp:
            run(args, Path(tmp))
    except KeyboardInterrupt:
        console.print("\ninterrupted; servers stopped")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
