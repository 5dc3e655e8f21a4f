"""Prompt compression: input tokens saved per stage, and the latency compression adds.

    .venv/bin/python benchmarks/savings.py [--repeat 5]

The workloads (``compression_workloads.py``) are multi-turn conversations assembled from the
Python standard library's own source files and docstrings, sent the way IDE assistants send them:
every request carries the whole history, each user turn re-sends the open files, answers quote the
code they discuss. Every request of a conversation (turn 1, turns 1–2, …) is one sample, as the
gateway would see it.

Token savings are exact: ``exact_counts=True`` tokenizes the whole text at every stage boundary.
Latency is ``compress()`` with the default settings (sampled counting), timed with
``time.perf_counter``; each request is timed ``--repeat`` times and its median kept (robust to
other processes on the machine), then the median and p95 are taken over requests. Two regimes:

* **cold** — the memos of block scans and normalised prose are emptied before every call: the
  cost of a request whose texts the process has never seen;
* **in order** — each conversation's requests in turn, memos kept: what a gateway sees when a
  client re-sends its history (the previous turn's texts are already known).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cache_workloads import cache_rows, cache_table, reasked_questions
from compression_workloads import MODEL, Workload, all_workloads
from rich.console import Console
from rich.table import Table

from meterline.compress import CompressionSettings, clear_caches, compress
from meterline.types import ChatRequest

STAGES = ("normalize", "dedup", "symbols", "code", "trim")
LOSSLESS = STAGES[:4]
SIZES: tuple[tuple[int, int, str], ...] = (
    (0, 5_000, "< 5 K"),
    (5_000, 20_000, "5–20 K"),
    (20_000, 50_000, "20–50 K"),
    (50_000, 10**9, "≥ 50 K"),
)
console = Console(width=max(120, Console().width))


@dataclass(frozen=True, slots=True)
class Sample:
    tokens: int  # exact input tokens of the request
    cold_ms: list[float]
    in_order_ms: list[float]


@dataclass(frozen=True, slots=True)
class CompressionRow:
    """One workload's compression results: savings summed over its requests, latency samples."""

    workload: str
    tokens_in: int  # exact, before compression
    saved: dict[str, int]  # exact tokens saved per stage
    estimated_saved: int  # the total saving as the default (sampled) counts report it
    samples: list[Sample]

    def pct(self, tokens: int) -> float:
        return 100.0 * tokens / self.tokens_in if self.tokens_in else 0.0

    @property
    def lossless_saved(self) -> int:
        return sum(self.saved[stage] for stage in LOSSLESS)

    @property
    def total_saved(self) -> int:
        return sum(self.saved.values())


def median_p95(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[-1]


def _timed(request: ChatRequest, settings: CompressionSettings) -> float:
    start = time.perf_counter()
    compress(request, settings)
    return (time.perf_counter() - start) * 1000


def _row(workload: Workload, settings: CompressionSettings, repeat: int) -> CompressionRow:
    exact = replace(settings, exact_counts=True)
    saved = dict.fromkeys(STAGES, 0)
    tokens: list[int] = []
    estimated = 0
    for request in workload.requests:
        report = compress(request, exact)[1]
        tokens.append(report.tokens_before)
        for stage in report.stages:
            saved[stage.name] += stage.tokens_saved
        estimated += compress(request, settings)[1].tokens_saved
    cold: list[list[float]] = [[] for _ in workload.requests]
    in_order: list[list[float]] = [[] for _ in workload.requests]
    for _ in range(repeat):
        for k, request in enumerate(workload.requests):
            clear_caches()
            cold[k].append(_timed(request, settings))
        clear_caches()
        for k, request in enumerate(workload.requests):
            in_order[k].append(_timed(request, settings))
    samples = [Sample(*sample) for sample in zip(tokens, cold, in_order, strict=True)]
    return CompressionRow(workload.name, sum(tokens), saved, estimated, samples)


def compression_rows(
    workloads: Sequence[Workload], settings: CompressionSettings, repeat: int = 5
) -> list[CompressionRow]:
    """Tokens saved per stage (exact) and latency added (default settings) for each workload."""
    compress(workloads[0].requests[0], settings)  # load the tokenizer
    return [_row(workload, settings, repeat) for workload in workloads]


def savings_table(rows: Sequence[CompressionRow]) -> Table:
    table = Table(title="Input tokens saved per stage (exact counts, summed over each workload)")
    table.add_column("workload")
    table.add_column("tokens in", justify="right")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("stages 1–4", justify="right")
    table.add_column("all stages", justify="right")
    table.add_column("est. error", justify="right")
    for row in rows:
        error = row.pct(row.estimated_saved) - row.pct(row.total_saved)
        table.add_row(
            row.workload,
            f"{row.tokens_in:,}",
            *(f"{row.pct(row.saved[stage]):.1f}%" for stage in STAGES),
            f"{row.lossless_saved:,} ({row.pct(row.lossless_saved):.1f}%)",
            f"{row.total_saved:,} ({row.pct(row.total_saved):.1f}%)",
            f"{error:+.1f} pt",
        )
    return table


def latency_table(rows: Sequence[CompressionRow]) -> Table:
    table = Table(title="Latency added per request, ms: compress(), default settings")
    for column in ("workload", "requests", "tokens/request", "cold median", "cold p95"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    table.add_column("in order median", justify="right")
    table.add_column("in order p95", justify="right")
    groups = [(row.workload, row.samples) for row in rows]
    for low, high, label in SIZES:
        sized = [s for row in rows for s in row.samples if low <= s.tokens < high]
        groups.append((f"all, {label} tokens", sized))
    for name, samples in groups:
        if not samples:
            continue
        cold = median_p95([statistics.median(s.cold_ms) for s in samples])
        warm = median_p95([statistics.median(s.in_order_ms) for s in samples])
        sizes = sorted(s.tokens for s in samples)
        table.add_row(
            name,
            str(len(samples)),
            f"{sizes[0]:,}–{sizes[-1]:,}",
            *(f"{ms:.2f}" for ms in (*cold, *warm)),
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per request and regime")
    args = parser.parse_args()
    workloads = all_workloads()
    for workload in workloads:
        console.print(f"[bold]{workload.name}[/bold]: {workload.description}")
    rows = compression_rows(workloads, CompressionSettings(model=MODEL), args.repeat)
    console.print(savings_table(rows))
    console.print(
        "Stage columns: share of the input tokens that stage removed (text parts, tables"
        " included). Stages 1–4 are lossless; trim runs only above 50,000 tokens. est. error:"
        " the default sampled counts' total saving minus the exact one."
    )
    console.print(latency_table(rows))
    console.print(cache_table(cache_rows([*workloads, reasked_questions()])))


if __name__ == "__main__":
    main()
