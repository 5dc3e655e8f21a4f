"""Printing the benchmark's results: one table of rows, memory, and the soak series."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from compare import Row
    from soak import SoakResult

__all__ = ["console", "print_results", "print_scaling", "print_soak"]

console = Console(width=max(180, Console().width))  # wide enough for the table

_COLUMNS = (
    "target",
    "stream",
    "conc",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "Δp50 ms",
    "Δp99 ms",
    "TTFT ms",
    "ΔTTFT ms",
    "ML÷LL req/s",
    "CPU s/1k",
    "other CPU",
    "steal",
)


def _delta(value: float | None, base: float | None) -> str:
    return f"{value - base:+.2f}" if value is not None and base is not None else ""


def _cells(row: Row, by_key: dict[tuple[str, bool, int], Row]) -> list[str]:
    load = row.load
    direct = by_key.get(("direct", row.stream, row.concurrency))
    base = direct if row.target != "direct" and direct is not None else None
    ratio = ""
    ml = by_key.get(("meterline", row.stream, row.concurrency))
    if row.target == "litellm" and ml is not None and load.rps:
        ratio = f"{ml.load.rps / load.rps:.2f}×"
    return [
        row.target,
        "yes" if row.stream else "no",
        str(row.concurrency),
        f"{load.rps:,.0f}",
        f"{load.p50_ms:.2f}",
        f"{load.p95_ms:.2f}",
        f"{load.p99_ms:.2f}",
        str(load.errors),
        _delta(load.p50_ms, base.load.p50_ms) if base else "",
        _delta(load.p99_ms, base.load.p99_ms) if base else "",
        f"{row.ttft_ms:.2f}" if row.ttft_ms is not None else "",
        _delta(row.ttft_ms, base.ttft_ms) if base else "",
        ratio,
        f"{row.cpu_per_1k:.2f}",
        f"{row.other_pct:.0f}%",
        f"{row.steal_pct:.0f}%",
    ]


def results_table(rows: list[Row]) -> Table:
    """Every target per (stream, concurrency); Δ against direct; Meterline ÷ LiteLLM."""
    table = Table(
        title="Meterline (defaults on, cache off) over a fake upstream (direct = upstream alone)",
        caption="Δ: target minus direct at the same stream/concurrency. TTFT: p50 time to the "
        "first body bytes of a stream. ML÷LL: Meterline req/s ÷ LiteLLM req/s. CPU s/1k: CPU "
        "seconds the target's server used per 1,000 requests. other CPU: machine share used "
        "outside the benchmark (should be ~0). steal: machine share the host of a virtual "
        "machine took away (should be ~0).",
    )
    for name in _COLUMNS:
        table.add_column(name, justify="left" if name in ("target", "stream") else "right")
    by_key = {(r.target, r.stream, r.concurrency): r for r in rows}
    for row in rows:
        table.add_row(*_cells(row, by_key))
    return table


def print_results(rows: list[Row], memory: dict[str, dict[str, Any]], logged: int) -> None:
    console.print(results_table(rows))
    if rows and max(r.other_pct for r in rows) > 5:
        console.print("[yellow]warning:[/yellow] other processes used the CPU during the run "
                      "(see 'other CPU'); those rows are low and noisy")  # fmt: skip
    if rows and max(r.steal_pct for r in rows) > 5:
        console.print("[yellow]warning:[/yellow] the virtual machine's host took CPU time away "
                      "during the run (see 'steal'); its milliseconds and req/s are not the "
                      "machine's own")  # fmt: skip
    for name, m in memory.items():
        console.print(
            f"{name} RSS: {m['rss_before_mib']:.1f} MiB after start-up, "
            f"{m['rss_after_mib']:.1f} MiB after {m['requests_served']:,} requests"
        )
    served = memory.get("meterline", {}).get("requests_served", 0)
    console.print(f"meterline request-log rows: {logged:,} for {served:,} requests "
                  f"({'none lost' if logged >= served else 'ROWS MISSING'})")  # fmt: skip


def print_scaling(
    rows: list[Row],
    workers: list[int],
    rss: dict[str, float],
    served: dict[str, int],
    logged: dict[str, int],
    counters: str = "file",
) -> None:
    """One row per (stream, concurrency, workers): req/s and its ratio to the first count."""
    where = "a counters file" if counters == "file" else "Redis"
    table = Table(
        title=f"Meterline served by N worker processes (counters in {where} for every N)",
        caption=f"× {workers[0]}w: req/s ÷ req/s with {workers[0]} worker(s) at the same "
        "stream/concurrency. CPU s/1k: CPU seconds of all the server's processes per 1,000 "
        "requests. other CPU: machine share used outside the benchmark (the load generator "
        "counts as ours; Redis, when the workers use it, as other). steal: taken by the host.",
    )
    for name in ("workers", "stream", "conc", "req/s", f"× {workers[0]}w", "p50 ms", "p99 ms",
                 "errors", "CPU s/1k", "other CPU", "steal"):  # fmt: skip
        table.add_column(name, justify="left" if name == "stream" else "right")
    base = {(r.stream, r.concurrency): r.load.rps for r in rows if r.target == f"{workers[0]}w"}
    for row in rows:
        first = base.get((row.stream, row.concurrency))
        load = row.load
        table.add_row(
            row.target.removesuffix("w"),
            "yes" if row.stream else "no",
            str(row.concurrency),
            f"{load.rps:,.0f}",
            f"{load.rps / first:.2f}×" if first else "",
            f"{load.p50_ms:.2f}",
            f"{load.p99_ms:.2f}",
            str(load.errors),
            f"{row.cpu_per_1k:.2f}",
            f"{row.other_pct:.0f}%",
            f"{row.steal_pct:.0f}%",
        )
    console.print(table)
    for name in rss:
        lost = "none lost" if logged[name] >= served[name] else "ROWS MISSING"
        console.print(f"{name}: RSS {rss[name]:.1f} MiB (all processes) after {served[name]:,} "
                      f"requests; request-log rows {logged[name]:,} ({lost})")  # fmt: skip


def print_soak(result: SoakResult) -> None:
    console.print(f"Soak: {result.rate:g} req/s (half plain, half streamed) for "
                  f"{result.seconds:g} s; Meterline's RSS every {result.interval:g} s")  # fmt: skip
    table = Table()
    table.add_column("t s", justify="right")
    table.add_column("RSS MiB", justify="right")
    for at, rss in result.samples:
        table.add_row(f"{at:.0f}", f"{rss:.1f}")
    console.print(table)
    for name, load in zip(("plain", "streamed"), result.loads, strict=True):
        console.print(
            f"{name}: {load.requests:,} requests, {load.rps:,.0f} req/s, p50 "
            f"{load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms, {load.errors} errors"
        )
    console.print(f"RSS over the second half: {result.second_half_growth:+.1f} MiB "
                  f"(trend {result.second_half_slope:+.2f} MiB/min)")  # fmt: skip
    if result.steal_pct > 5:
        console.print(f"[yellow]warning:[/yellow] the virtual machine's host took "
                      f"{result.steal_pct:.0f}% of its CPU time away during the soak: a rate "
                      "or latency short of the asked one may be the host's doing")  # fmt: skip
