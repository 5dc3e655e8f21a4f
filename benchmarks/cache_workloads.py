"""Exact-cache hit rates on the benchmark workloads, through the real cache stage.

Each request goes through :class:`meterline.cache.CacheStage` (real keys, in-memory backend) as
the gateway would run it; a miss is answered by a stand-in model answer and stored, exactly as a
finished request is. Multi-turn conversations grow with every turn, so an exact cache cannot hit
them; a question re-asked as it stands (by the same person, or by colleagues) can.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from compression_workloads import MODEL, Workload, repeated_questions
from rich.table import Table

from meterline.cache import CacheStage, MemoryCache
from meterline.catalog import ModelInfo
from meterline.pipeline.context import RequestContext, Route
from meterline.settings import CacheSettings
from meterline.types import ChatRequest, ChatResponse, Message, TextPart, Usage

__all__ = ["CacheRow", "cache_rows", "cache_table", "reasked_questions"]


@dataclass(frozen=True, slots=True)
class CacheRow:
    name: str
    requests: int
    hits: int
    lookup_ms_p50: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0


def reasked_questions(sessions: int = 3) -> Workload:
    """The repeated-question workload's questions, each as its own single-turn request, asked in
    ``sessions`` separate sessions (a team running into the same error)."""
    source = repeated_questions()
    singles = [ChatRequest(MODEL, (r.messages[0], r.messages[-1])) for r in source.requests]
    return Workload("re-asked questions", f"{len(singles)} questions × {sessions} sessions",
                    singles * sessions)  # fmt: skip


async def _run(workload: Workload) -> CacheRow:
    stage = CacheStage(MemoryCache(), CacheSettings(ttl=3600))
    route = Route("openai", ModelInfo(provider="openai", name=MODEL), "benchmark")
    hits, lookups = 0, []
    for request in workload.requests:
        ctx = RequestContext(request, "openai", route=route)
        started = time.perf_counter()
        reply = await stage(ctx)
        lookups.append((time.perf_counter() - started) * 1000)
        if reply is not None:
            hits += 1
            continue
        ctx.answer = ChatResponse("x", MODEL, Message("assistant", (TextPart("an answer"),)),
                                  "stop", Usage(100, 20))  # fmt: skip
        ctx.complete("ok", ctx.answer.usage)
        await asyncio.sleep(0)  # let the stage store the answer
    return CacheRow(workload.name, len(workload.requests), hits, statistics.median(lookups))


def cache_rows(workloads: list[Workload]) -> list[CacheRow]:
    return [asyncio.run(_run(w)) for w in workloads]


def cache_table(rows: list[CacheRow]) -> Table:
    table = Table(title="Exact response cache (real keys, in-memory backend)")
    for column in ("workload", "requests", "hits", "hit rate", "lookup p50 ms"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for row in rows:
        table.add_row(row.name, str(row.requests), str(row.hits), f"{row.hit_rate:.0%}",
                      f"{row.lookup_ms_p50:.3f}")  # fmt: skip
    return table
