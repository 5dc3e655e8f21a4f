"""Prompt compression: input tokens saved per stage, and the latency compression adds.

    .venv/bin/python benchmarks/savings.py [--repeat 10]

The workloads are multi-turn conversations assembled from the Python standard library's own
source files and docstrings (read through ``importlib.util.find_spec(name).origin`` and
``inspect``), sent the way IDE assistants send them: every request carries the whole history,
each user turn re-sends the open files, and assistant answers quote the code they discuss. Every
request of a conversation (turn 1, turns 1–2, …) is one sample, as a gateway would see it.

Token savings are exact (``exact_counts=True``: the whole text is tokenized at every stage
boundary). Latency is measured with the default settings, i.e. what the request path pays:
``compress()`` wall time per request (``time.perf_counter``), median and p95 over all samples.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rich.console import Console
from rich.table import Table
from compression_workloads import MODEL, Workload, all_workloads

from meterline.compress import CompressionSettings, compress
from meterline.types import ChatRequest

STAGES = ("normalize", "dedup", "symbols", "code", "trim")
LOSSLESS = STAGES[:4]
console = Console(width=max(140, Console().width))


@dataclass(frozen=True, slots=True)
class CompressionRow:
    """One workload's compression results, summed over its requests."""

    workload: str
    requests: int
    tokens_in: int  # exact, before compression
    saved: dict[str, int]  # exact tokens saved per stage
    estimated_saved: int  # total saved as the default (sampled) counting reports it
    latency_ms: list[float]  # one sample per request and repetition, default settings

    def pct(self, tokens: int) -> float:
        return 100.0 * tokens / self.tokens_in if self.tokens_in else 0.0

    @property
    def lossless_saved(self) -> int:
        return sum(self.saved.get(stage, 0) for stage in LOSSLESS)

    @property
    def total_saved(self) -> int:
        return sum(self.saved.values())

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latency_ms)

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latency_ms, n=20, method="inclusive")[-1]


def _exact_savings(
    requests: Sequence[ChatRequest], settings: CompressionSettings
) -> tuple[int, dict[str, int]]:
    exact = replace(settings, exact_counts=True)
    tokens_in = 0
    saved = dict.fromkeys(STAGES, 0)
    for request in requests:
        _, report = compress(request, exact)
        tokens_in += report.tokens_before
        for stage in report.stages:
            saved[stage.name] += stage.tokens_saved
    return tokens_in, saved


def _timed(
    requests: Sequence[ChatRequest], settings: CompressionSettings, repeat: int
) -> tuple[list[float], int]:
    samples: list[float] = []
    estimated = 0
    for request in requests:
        for _ in range(repeat):
            start = time.perf_counter()
            _, report = compress(request, settings)
            samples.append((time.perf_counter() - start) * 1000)
        estimated += report.tokens_saved
    return samples, estimated


def compression_rows(
    workloads: Sequence[Workload], settings: CompressionSettings, repeat: int = 10
) -> list[CompressionRow]:
    """Tokens saved per stage (exact) and latency added (default counting) for each workload."""
    for request in workloads[0].requests[:2]:  # load the tokenizer, warm the regex caches
        compress(request, settings)
    rows = []
    for workload in workloads:
        tokens_in, saved = _exact_savings(workload.requests, settings)
        samples, estimated = _timed(workload.requests, settings, repeat)
        rows.append(
            CompressionRow(
                workload.name, len(workload.requests), tokens_in, saved, estimated, samples
            )
        )
    return rows


def compression_table(rows: Sequence[CompressionRow]) -> Table:
    table = Table(title="Prompt compression: input tokens saved (exact) and latency added")
    table.add_column("workload")
    table.add_column("req", justify="right")
    table.add_column("tokens in", justify="right")
    for stage in STAGES:
        table.add_column(stage, justify="right")
    table.add_column("1–4 saved", justify="right")
    table.add_column("total saved", justify="right")
    table.add_column("est. err", justify="right")
    table.add_column("median ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for row in rows:
        error = row.pct(row.estimated_saved) - row.pct(row.total_saved)
        table.add_row(
            row.workload,
            str(row.requests),
            f"{row.tokens_in:,}",
            *(f"{row.saved[s]:,} ({row.pct(row.saved[s]):.1f}%)" for s in STAGES),
            f"{row.pct(row.lossless_saved):.1f}%",
            f"{row.pct(row.total_saved):.1f}%",
            f"{error:+.1f} pt",
            f"{row.median_ms:.2f}",
            f"{row.p95_ms:.2f}",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per request")
    args = parser.parse_args()
    workloads = all_workloads()
    for workload in workloads:
        console.print(f"[bold]{workload.name}[/bold]: {workload.description}")
    settings = CompressionSettings(model=MODEL)
    console.print(compression_table(compression_rows(workloads, settings, args.repeat)))
    console.print(
        "Stage columns: tokens that stage removed, summed over the workload's requests (a"
        " request's tokens = its text parts, tables included). 1–4 = the lossless stages."
        " est. err = the default sampled count's total saving minus the exact one."
        " Latency: compress() per request with default settings."
    )


if __name__ == "__main__":
    main()
