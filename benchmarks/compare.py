"""Meterline against another gateway (LiteLLM's proxy), both in front of the same fast upstream.

    .venv/bin/python benchmarks/compare.py --against litellm [--quick] [--duration 10]

LiteLLM is installed into a throw-away virtual environment (default ``.bench/litellm-venv``,
reused when it already holds the pinned version), never into Meterline's own. Its proxy runs
offline (``LITELLM_LOCAL_MODEL_COST_MAP=True``), one worker, a master key and no database, with
one model routed to ``fastupstream.py``. Meterline runs exactly as in ``overhead.py``. ``wrk``
(or the aiohttp fallback) drives direct, Meterline and LiteLLM in turn with the same bodies,
each run with its own unique prompts. One table is printed; every child process is stopped on
exit, error and Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from loadgen import TOKEN, LoadResult, have_wrk, run_load
from overhead import (
    HERE,
    MODEL,
    _stop,
    check_answers,
    console,
    gateway_config,
    gateway_env,
    request_body,
)
from procs import child, cpu_seconds, free_port, machine_busy_seconds, memory_mb, wait_ready
from rich.table import Table

LITELLM_VERSION = "1.106.2"
LITELLM_KEY = "sk-litellm-bench-master"  # the proxy's master key; sent as the bearer token
TARGETS = ("direct", "meterline", "litellm")


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to load: where to send requests, which token, which process to watch."""

    name: str
    url: str
    token: str
    pid: int


@dataclass(frozen=True, slots=True)
class Row:
    target: str
    stream: bool
    concurrency: int
    load: LoadResult
    cpu_per_1k: float  # CPU seconds the target's server spent per 1,000 requests
    other_pct: float  # share of the machine's CPU used by processes outside the benchmark


def ours_and_machine(pids: list[int]) -> tuple[float, float]:
    """CPU seconds of the servers, finished load generators and this process; machine busy."""
    children, me = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
    servers = sum(cpu_seconds(pid) for pid in pids)
    ours = servers + children.ru_utime + children.ru_stime + me.user + me.system
    return ours, machine_busy_seconds()


def installed_version(python: Path) -> str | None:
    """The litellm version importable by ``python``, or None."""
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_litellm(venv: Path) -> Path:
    """Create ``venv`` if needed and install ``litellm[proxy]==LITELLM_VERSION``; its bin dir."""
    python = venv / "bin" / "python"
    if not python.exists():
        console.print(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if installed_version(python) != LITELLM_VERSION:
        console.print(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv}", markup=False)
        spec = f"litellm[proxy]=={LITELLM_VERSION}"
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", spec], capture_output=True, text=True
        )
        found = installed_version(python)
        if done.returncode != 0 or found != LITELLM_VERSION:
            tail = (done.stderr or done.stdout)[-1500:]
            raise SystemExit(
                f"error: could not install litellm[proxy]=={LITELLM_VERSION} from the package "
                f"registry (installed: {found or 'none'}); not using another version.\n{tail}"
            )
    return venv / "bin"


def litellm_config(tmp: Path, upstream_port: int) -> Path:
    """A proxy config: MODEL routed to the fake upstream; master key; no database."""
    path = tmp / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-bench\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    return path


def litellm_env(tmp: Path) -> dict[str, str]:
    """Offline, no database, no provider keys from the caller's environment."""
    prefixes = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "LITELLM_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HOME": str(tmp)}


def measure(
    target: Target, pids: list[int], stream: bool, concurrency: int, args: argparse.Namespace
) -> Row:
    """One load run against ``target``; CPU from its own process, ``pids`` are all servers."""
    label = f"  {target.name:9} stream={'yes' if stream else 'no':3} c={concurrency:<3}"
    console.print(label, end="")
    cpu_before, (ours_before, busy_before) = cpu_seconds(target.pid), ours_and_machine(pids)
    started = time.monotonic()
    body = request_body(stream)
    load = run_load(target.url, body, concurrency, args.duration, args.wrk, target.token)
    cpu = cpu_seconds(target.pid) - cpu_before
    ours_after, busy_after = ours_and_machine(pids)
    others = (busy_after - busy_before) - (ours_after - ours_before)
    wall = (time.monotonic() - started) * (os.cpu_count() or 1)
    per_1k = cpu / load.requests * 1000 if load.requests else 0.0
    console.print(f" {load.rps:9,.0f} req/s  p50 {load.p50_ms:7.2f} ms  p99 {load.p99_ms:7.2f} ms")
    return Row(target.name, stream, concurrency, load, per_1k, max(0.0, others) / wall * 100)


def results_table(rows: list[Row]) -> Table:
    """One table: every target per (stream, concurrency), Δp50 vs direct, Meterline ÷ LiteLLM."""
    table = Table(
        title="Meterline vs LiteLLM proxy, same fake upstream (direct = upstream alone)",
        caption="Δp50: target minus direct. ML÷LL: Meterline req/s ÷ LiteLLM req/s for the same "
        "stream/concurrency. CPU s/1k: CPU seconds the target's server used per 1,000 requests. "
        "other CPU: machine share used outside the benchmark (should be ~0).",
    )
    for name in ("target", "stream", "conc", "req/s", "p50 ms", "p99 ms", "errors", "Δp50 ms"):
        table.add_column(name, justify="left" if name in ("target", "stream") else "right")
    table.add_column("ML÷LL req/s", justify="right")
    table.add_column("CPU s/1k", justify="right")
    table.add_column("other CPU", justify="right")
    by_key = {(r.target, r.stream, r.concurrency): r for r in rows}
    for row in rows:
        direct = by_key.get(("direct", row.stream, row.concurrency))
        delta = ""
        if row.target != "direct" and direct is not None:
            delta = f"{row.load.p50_ms - direct.load.p50_ms:+.2f}"
        ratio = ""
        ml = by_key.get(("meterline", row.stream, row.concurrency))
        ll = by_key.get(("litellm", row.stream, row.concurrency))
        if row.target == "litellm" and ml and ll and ll.load.rps:
            ratio = f"{ml.load.rps / ll.load.rps:.2f}×"
        table.add_row(
            row.target,
            "yes" if row.stream else "no",
            str(row.concurrency),
            f"{row.load.rps:,.0f}",
            f"{row.load.p50_ms:.2f}",
            f"{row.load.p99_ms:.2f}",
            str(row.load.errors),
            delta,
            ratio,
            f"{row.cpu_per_1k:.2f}",
            f"{row.other_pct:.0f}%",
        )
    return table


def run(args: argparse.Namespace, tmp: Path, bin_dir: Path) -> None:
    """Start the upstream and both gateways, check and warm them, measure, print."""
    up_port, ml_port, ll_port = free_port(), free_port(), free_port()
    serve = [sys.executable, "-m", "meterline.cli", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(ml_port), "--config", str(gateway_config(tmp, up_port))]
    serve += ["--database-url", f"sqlite:///{tmp / 'bench.db'}", "--log-level", "warning"]
    proxy = [str(bin_dir / "litellm"), "--host", "127.0.0.1", "--port", str(ll_port)]
    proxy += ["--config", str(litellm_config(tmp, up_port)), "--num_workers", "1"]
    rows: list[Row] = []
    with ExitStack() as stack:
        upstream = [sys.executable, str(HERE / "fastupstream.py"), "--port", str(up_port)]
        up_pid = stack.enter_context(child(upstream, tmp / "upstream.log"))
        wait_ready(f"http://127.0.0.1:{up_port}/health", up_pid, tmp / "upstream.log")
        ml_pid = stack.enter_context(child(serve, tmp / "meterline.log", gateway_env(tmp)))
        ll_pid = stack.enter_context(child(proxy, tmp / "litellm.log", litellm_env(tmp)))
        wait_ready(f"http://127.0.0.1:{ml_port}/health", ml_pid, tmp / "meterline.log")
        ll_health = f"http://127.0.0.1:{ll_port}/health/liveliness"
        wait_ready(ll_health, ll_pid, tmp / "litellm.log", timeout=120)
        path = "/v1/chat/completions"
        targets = [
            Target("direct", f"http://127.0.0.1:{up_port}{path}", TOKEN, up_pid),
            Target("meterline", f"http://127.0.0.1:{ml_port}{path}", TOKEN, ml_pid),
            Target("litellm", f"http://127.0.0.1:{ll_port}{path}", LITELLM_KEY, ll_pid),
        ]
        for target in targets:
            check_answers(target.url, target.token)
        rss_before = {t.name: memory_mb(t.pid) for t in targets[1:]}
        for target in targets:
            for stream in (False, True):
                top = max(args.concurrency)
                body = request_body(stream)
                run_load(target.url, body, top, args.warmup, args.wrk, target.token)
        for stream in (False, True):
            for concurrency in args.concurrency:
                pids = [t.pid for t in targets]
                rows += [measure(t, pids, stream, concurrency, args) for t in targets]
        rss_after = {t.name: memory_mb(t.pid) for t in targets[1:]}
    console.print(results_table(rows))
    if max(r.other_pct for r in rows) > 5:
        console.print("[yellow]warning:[/yellow] other processes used the CPU during the run "
                      "(see 'other CPU'); those rows are low and noisy")  # fmt: skip
    for name, before in rss_before.items():
        console.print(f"{name} RSS: {before:.1f} MiB after start-up, {rss_after[name]:.1f} MiB "
                      "after the runs")  # fmt: skip


def parse_args() -> argparse.Namespace:
    """Command line; ``--quick`` is a short smoke run at concurrency 1 and 10."""
    parser = argparse.ArgumentParser(description="Compare Meterline with another gateway.")
    parser.add_argument("--against", choices=["litellm"], default="litellm")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,10,50", help="comma-separated, e.g. 1,10,50")
    parser.add_argument("--quick", action="store_true", help="2 s per measurement, c=1,10")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "aiohttp"], default="auto")
    parser.add_argument("--workdir", type=Path, default=HERE.parent / ".bench")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.quick:
        args.duration = 2
        args.concurrency = [c for c in args.concurrency if c <= 10] or args.concurrency[:1]
    args.warmup = 1.0 if args.quick else 2.0
    args.wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and have_wrk())
    return args


def main() -> int:
    """Install (or reuse) LiteLLM, then benchmark; 130 on Ctrl-C, 1 on a failed setup."""
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        bin_dir = ensure_litellm(args.workdir / "litellm-venv")
        runs = 6 * len(args.concurrency) * args.duration + 6 * args.warmup
        console.print(f"LiteLLM {LITELLM_VERSION}; load generator: "
                      f"{'wrk' if args.wrk else 'aiohttp'}; ~{runs:.0f} s of load")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="meterline-compare-") as tmp:
            run(args, Path(tmp), bin_dir)
    except KeyboardInterrupt:
        console.print("\ninterrupted; servers stopped")
        return 130
    except RuntimeError as error:
        console.print(f"[red]error:[/red] {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
