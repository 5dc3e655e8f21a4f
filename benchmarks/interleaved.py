"""Two versions of the gateway side by side, in interleaved rounds: a before/after figure that a
noisy machine disturbs far less than two separate runs of ``compare.py``.

    .venv/bin/python benchmarks/interleaved.py --base HEAD~3 [--rounds 4] [--duration 5]

``--base`` (any git revision) is checked out into a temporary worktree; one fake upstream and two
Meterlines (``targets.py``'s configuration) start, the base one importing the worktree's code
(``PYTHONPATH``) and the other this checkout's. Each round loads both in turn — plain and
streamed, at each concurrency, the order alternating between rounds — so a slow minute of the
machine hits both alike. The table shows each one's medians over the rounds: req/s, CPU of the
gateway process per request, p50 and p99, and new ÷ base.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from loadgen import have_wrk, run_load
from procs import cpu_seconds, machine_seconds, machine_share
from report import console
from rich.table import Table
from targets import HERE, Target, check_answers, request_body, start_meterline, start_upstream

__all__ = ["Sample", "main"]


@dataclass(frozen=True, slots=True)
class Sample:
    rps: float
    cpu_ms: float  # CPU of the gateway process per request
    p50_ms: float
    p99_ms: float


def worktree(stack: ExitStack, revision: str, where: Path) -> Path:
    """``revision`` checked out at ``where`` (removed when ``stack`` closes)."""
    repo = HERE.parent
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--force", str(where),
                    revision], check=True, capture_output=True)  # fmt: skip
    stack.callback(subprocess.run, ["git", "-C", str(repo), "worktree", "remove", "--force",
                                    str(where)], capture_output=True)  # fmt: skip
    return where


def start(stack: ExitStack, tmp: Path, upstream_port: int, source: Path | None) -> Target:
    """A Meterline importing ``source`` (a ``src`` folder), or this checkout's code."""
    tmp.mkdir()
    saved = os.environ.get("PYTHONPATH")
    if source is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = str(source)
    try:
        target = start_meterline(stack, tmp, upstream_port)
    finally:
        os.environ.pop("PYTHONPATH", None)
        if saved is not None:
            os.environ["PYTHONPATH"] = saved
    check_answers(target)
    return target


def measure(target: Target, stream: bool, concurrency: int, args: argparse.Namespace) -> Sample:
    before = cpu_seconds(target.pid)
    load = run_load(target.url, request_body(stream), concurrency, args.duration, args.wrk,
                    target.token)  # fmt: skip
    cpu = cpu_seconds(target.pid) - before
    per_request = cpu / load.requests * 1000 if load.requests else 0.0
    return Sample(load.rps, per_request, load.p50_ms, load.p99_ms)


def median(samples: list[Sample]) -> Sample:
    return Sample(*(statistics.median(getattr(s, f) for s in samples) for f in Sample.__slots__))


def run(args: argparse.Namespace) -> dict[tuple[str, bool, int], Sample]:
    kinds = [(stream, c) for stream in (False, True) for c in args.concurrency]
    samples: dict[tuple[str, bool, int], list[Sample]] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="meterline-ab-")))
        base_tree = worktree(stack, args.base, tmp / "base-tree")
        _, port = start_upstream(stack, tmp)
        targets = {"base": start(stack, tmp / "base", port, base_tree / "src"),
                   "new": start(stack, tmp / "new", port, None)}  # fmt: skip
        for round_ in range(args.rounds):
            order = ("base", "new") if round_ % 2 == 0 else ("new", "base")
            for stream, concurrency in kinds:
                for name in order:
                    sample = measure(targets[name], stream, concurrency, args)
                    samples.setdefault((name, stream, concurrency), []).append(sample)
            console.print(f"  round {round_ + 1} of {args.rounds} done")
    return {key: median(values) for key, values in samples.items()}


def print_table(result: dict[tuple[str, bool, int], Sample], args: argparse.Namespace) -> None:
    table = Table(title=f"base = {args.base}, new = this checkout; medians of {args.rounds} "
                        f"rounds of {args.duration:g} s")  # fmt: skip
    for column in ("stream", "conc", "target", "req/s", "CPU ms/req", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in ("stream", "target") else "right")
    for stream in (False, True):
        for concurrency in args.concurrency:
            base, new = result[("base", stream, concurrency)], result[("new", stream, concurrency)]
            label = "yes" if stream else "no"
            for name, s in (("base", base), ("new", new)):
                table.add_row(label, str(concurrency), name, f"{s.rps:,.0f}", f"{s.cpu_ms:.3f}",
                              f"{s.p50_ms:.2f}", f"{s.p99_ms:.2f}")  # fmt: skip
            table.add_row(label, str(concurrency), "new ÷ base", _ratio(new.rps, base.rps),
                          _ratio(new.cpu_ms, base.cpu_ms), _ratio(new.p50_ms, base.p50_ms),
                          _ratio(new.p99_ms, base.p99_ms), end_section=True)  # fmt: skip
    console.print(table)


def _ratio(new: float, base: float) -> str:
    return f"{new / base:.2f}×" if base else ""


def main() -> int:
    parser = argparse.ArgumentParser(description="Interleaved before/after of two revisions.")
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (order alternates)")
    parser.add_argument("--duration", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--concurrency", default="1,10", help="comma-separated, e.g. 1,10")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "aiohttp"], default="auto")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and have_wrk())
    _, stolen_before = machine_seconds()
    started = time.monotonic()
    result = run(args)
    share = machine_share(machine_seconds()[1] - stolen_before, time.monotonic() - started)
    print_table(result, args)
    console.print(f"CPU time the virtual machine's host took away during the run (steal): "
                  f"{share:.0f}% (~0 on a quiet machine; past ~5% timings are noisy)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
