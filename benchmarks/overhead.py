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
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from loadgen import COUNTER, LoadResult, have_wrk, run_load
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
MODEL = "gpt-4o-mini"
# Every request differs (COUNTER), so the response cache cannot answer: this measures forwarding.
MESSAGES = [{"role": "user", "content": f"Say hello in one short sentence. #{COUNTER}"}]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
console = Console(width=max(120, Console().width))  # wide enough for the table


@dataclass(frozen=True, slots=True)
class Row:
    mode: str  # "direct" or "gateway"
    stream: bool
    concurrency: int
    load: LoadResult
    cpu_per_1k: float  # CPU seconds the measured server spent per 1,000 requests


def request_body(stream: bool) -> str:
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 32}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def child(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``command`` for the duration of the block; yields its pid, always stops it."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_ready(url: str, pid: int, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            raise RuntimeError(f"{url} died while starting:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {timeout:g}s:\n{log_path.read_text()[-2000:]}")


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


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


def post(url: str, body: str) -> bytes:
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    data = body.replace(COUNTER, str(time.time_ns())).encode()
    request = urllib.request.Request(url, data, headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def check_answers(url: str) -> None:
    """One plain and one streamed request, so a broken setup fails loudly, not as fast errors."""
    answer = json.loads(post(url, request_body(stream=False)))
    if answer.get("object") != "chat.completion" or not answer.get("usage"):
        raise RuntimeError(f"{url}: unexpected answer {answer}")
    events = post(url, request_body(stream=True)).decode()
    if "chat.completion.chunk" not in events or '"usage":{' not in events.replace(" ", ""):
        raise RuntimeError(f"{url}: unexpected stream {events[:500]}")
    if not events.rstrip().endswith("data: [DONE]"):
        raise RuntimeError(f"{url}: stream does not end with [DONE]")


def measure(
    url: str, mode: str, pid: int, stream: bool, concurrency: int, args: argparse.Namespace
) -> Row:
    console.print(f"  {mode:7} stream={'yes' if stream else 'no':3} c={concurrency:<3}", end="")
    cpu_before = cpu_seconds(pid)
    load = run_load(url, request_body(stream), concurrency, args.duration, args.wrk)
    cpu = cpu_seconds(pid) - cpu_before
    per_1k = cpu / load.requests * 1000 if load.requests else 0.0
    console.print(f" {load.rps:9,.0f} req/s  p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms")
    return Row(mode, stream, concurrency, load, per_1k)


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
        "the measured server (fake upstream or gateway) used per 1,000 requests.",
    )
    for name in ("mode", "stream", "conc", "req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(name, justify="left" if name in ("mode", "stream") else "right")
    for name in ("Δp50 ms", "Δp99 ms", "rps ratio", "CPU s/1k"):
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
        check_answers(direct_url)
        check_answers(gateway_url)
        rss_before = memory_mb(gw_pid)
        warm_up(direct_url, args)
        warm_up(gateway_url, args)
        for stream in (False, True):
            for concurrency in args.concurrency:
                rows.append(measure(direct_url, "direct", up_pid, stream, concurrency, args))
                rows.append(measure(gateway_url, "gateway", gw_pid, stream, concurrency, args))
        rss_after, rss_peak = memory_mb(gw_pid), memory_mb(gw_pid, "VmHWM")
    console.print(results_table(rows))
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


def warn_if_busy() -> None:
    """The servers and the load generator need the whole machine; say so when it is shared."""
    load = os.getloadavg()[0]
    if load > 0.5:
        console.print(f"[yellow]warning:[/yellow] 1-minute load average is {load:.2f} before the "
                      "run; other processes will make the numbers low and noisy")  # fmt: skip


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background, where it is ignored
    runs = 4 * len(args.concurrency) * args.duration + 4 * args.warmup
    console.print(f"load generator: {'wrk' if args.wrk else 'aiohttp (wrk not found)'}; "
                  f"about {runs:.0f} s of load on {os.cpu_count()} core(s)")  # fmt: skip
    warn_if_busy()
    try:
        with tempfile.TemporaryDirectory(prefix="meterline-bench-") as tmp:
            run(args, Path(tmp))
    except KeyboardInterrupt:
        console.print("\ninterrupted; servers stopped")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
