"""Terminal tables for the CLI (``meterline stats`` and the demo's summary)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from meterline.catalog import to_usd
from meterline.store import GroupStats

__all__ = ["print_stats"]


def _usd(pusd: int) -> str:
    return f"${to_usd(pusd):.6f}"


def print_stats(console: Console, groups: Sequence[GroupStats], title: str) -> None:
    if not console.is_terminal:  # piped or logged: there is no screen to fit, keep every column
        console.width = max(console.width, 140)
    table = Table(title=title, title_justify="left")
    for name in ("provider", "model"):
        table.add_column(name, no_wrap=True)
    for name in ("requests", "errors", "input tok", "output tok", "cached", "cost (USD)",
                 "avg ms", "p95 ms"):  # fmt: skip
        table.add_column(name, justify="right", no_wrap=name == "cost (USD)")
    for g in groups:
        table.add_row(
            g.provider or "(not routed)",
            g.model or "-",
            f"{g.requests:,}",
            f"{g.errors:,} ({g.error_rate:.0%})",
            f"{g.input_tokens:,}",
            f"{g.output_tokens:,}",
            f"{g.cached_tokens:,}",
            _usd(g.cost_pusd),
            f"{g.avg_latency_ms:,.1f}",
            f"{g.p95_latency_ms:,.1f}",
        )
    if groups:
        table.add_section()
        table.add_row(
            "total",
            "",
            f"{sum(g.requests for g in groups):,}",
            f"{sum(g.errors for g in groups):,}",
            f"{sum(g.input_tokens for g in groups):,}",
            f"{sum(g.output_tokens for g in groups):,}",
            f"{sum(g.cached_tokens for g in groups):,}",
            _usd(sum(g.cost_pusd for g in groups)),
            "",
            "",
        )
    console.print(table)
