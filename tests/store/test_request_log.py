"""The request log, on SQLite and on PostgreSQL: rows written by the batched writer, read back
through the analytics API."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import func, select

from meterline.catalog import Catalog, cost, to_usd
from meterline.settings import LogSettings
from meterline.sim import Fault, OpenAISim
from meterline.store import LogWriter, open_engine
from meterline.store.schema import requests
from meterline.tokens import count_text
from meterline.types import Usage
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

USER = [{"role": "user", "content": "Summarise the request log design."}]


@pytest.fixture
def logged(
    bg: BackgroundLoop, database_url: str, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> Iterator[LiveGateway]:
    live = start_gateway(bg, make_settings(database_url, openai_sim, compat_sim))
    yield live
    live.stop()


_CLIENTS: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def _client(live: LiveGateway) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0)
    _CLIENTS.append(client)
    return client


def _rows(live: LiveGateway, limit: int = 50) -> list[dict[str, Any]]:
    live.flush()
    resp = httpx.get(f"{live.url}/api/requests", params={"limit": limit}, timeout=10)
    assert resp.status_code == 200
    return resp.json()["data"]  # type: ignore[no-any-return]


def _expected_cost(model: str, usage: Any) -> Decimal:
    info = Catalog.builtin().get("openai", model)
    assert info is not None
    exact = cost(
        Usage(usage.prompt_tokens, usage.completion_tokens,
              cached_tokens=usage.prompt_tokens_details.cached_tokens,
              reasoning_tokens=usage.completion_tokens_details.reasoning_tokens),
        info.price,
    )  # fmt: skip
    return to_usd(exact)


def test_every_request_is_one_row_with_tokens_cost_and_timing(logged: LiveGateway) -> None:
    client = _client(logged)
    plain = client.chat.completions.with_raw_response.create(
        model="o4-mini", messages=USER,  # type: ignore[arg-type]
        extra_headers={"x-meterline-metadata-team": "search", "x-meterline-metadata-ticket": "T-9"},
    )  # fmt: skip
    completion = plain.parse()
    chunks = list(client.chat.completions.create(model="fast", messages=USER, stream=True))  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=USER)  # type: ignore[arg-type]

    rows = {r["model_requested"]: r for r in _rows(logged)}
    assert set(rows) == {"o4-mini", "fast", "nope"}

    row = rows["o4-mini"]
    assert row["id"] == plain.headers["x-meterline-request-id"]
    usage = completion.usage
    assert usage is not None
    assert (row["input_tokens"], row["output_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["reasoning_tokens"] == usage.completion_tokens_details.reasoning_tokens > 0  # type: ignore[union-attr]
    assert Decimal(row["cost_usd"]) == _expected_cost("o4-mini", usage)
    assert Decimal(row["cost_usd"]) == Decimal(plain.headers["x-meterline-cost-usd"])
    assert row["metadata"] == {"team": "search", "ticket": "T-9"}
    assert (row["status"], row["http_status"], row["stream"], row["surface"]) == (
        "ok",
        200,
        False,
        "openai",
    )
    assert row["tenant"] == "default" and row["finish_reason"] == "stop"
    assert row["latency_ms"] > 0 and row["ttft_ms"] is None
    assert dt.datetime.fromisoformat(row["created_at"]).tzinfo is not None

    streamed = rows["fast"]
    assert (streamed["provider"], streamed["model"]) == ("openai", "gpt-4.1-nano")
    assert streamed["stream"] is True and streamed["usage_estimated"] is False
    assert 0 < streamed["ttft_ms"] <= streamed["latency_ms"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed["output_tokens"] == count_text(text, "gpt-4.1-nano")

    failed = rows["nope"]
    assert (failed["status"], failed["http_status"], failed["provider"]) == ("error", 404, None)
    assert "does not exist" in failed["error"]


def test_stream_without_upstream_usage_is_counted_with_the_exact_tokenizer(
    logged: LiveGateway, openai_sim: OpenAISim
) -> None:
    openai_sim.fail_next(Fault("no_usage"))
    client = _client(logged)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))  # type: ignore[arg-type]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reference = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    row = next(r for r in _rows(logged) if r["stream"])
    assert row["usage_estimated"] is True
    assert row["output_tokens"] == count_text(text, "gpt-4o-mini")
    assert row["input_tokens"] == reference.usage.prompt_tokens  # type: ignore[union-attr]


def test_stats_break_down_by_provider_and_model(logged: LiveGateway, openai_sim: OpenAISim) -> None:
    client = _client(logged)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    client.chat.completions.create(model="llama", messages=USER)  # type: ignore[arg-type]
    openai_sim.fail_next(*[Fault("http", 500)] * 3)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
    rows = _rows(logged)
    stats = httpx.get(f"{logged.url}/api/stats", params={"days": 1}, timeout=10).json()
    groups = {(g["provider"], g["model"]): g for g in stats["by_model"]}
    mini = groups[("openai", "gpt-4o-mini")]
    assert (mini["requests"], mini["errors"], mini["error_rate"]) == (4, 1, 0.25)
    ok_rows = [r for r in rows if r["model"] == "gpt-4o-mini" and r["status"] == "ok"]
    assert mini["input_tokens"] == sum(r["input_tokens"] for r in ok_rows)
    assert Decimal(mini["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in ok_rows)
    latencies = sorted(r["latency_ms"] for r in rows if r["model"] == "gpt-4o-mini")
    assert mini["p95_latency_ms"] == pytest.approx(latencies[-1], abs=0.01)
    assert groups[("groq", "llama-3.1-8b-instant")]["requests"] == 1
    assert stats["totals"]["requests"] == 5
    bad = httpx.get(f"{logged.url}/api/stats", params={"days": "week"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "days"


def test_health_reports_database_and_providers(logged: LiveGateway) -> None:
    body = httpx.get(f"{logged.url}/health", timeout=10).json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["counters"] == {"backend": "memory", "status": "ok"}
    assert [p["name"] for p in body["providers"]] == ["openai", "groq"]


def _row(i: int) -> dict[str, Any]:
    return {
        "id": f"row{i:06d}-{dt.datetime.now(dt.UTC).timestamp()}"[:32],
        "created_at": dt.datetime.now(dt.UTC),
        "tenant": "default",
        "key_id": None,
        "surface": "openai",
        "provider": "openai",
        "model_requested": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "route_reason": "test",
        "status": "ok",
        "http_status": 200,
        "error": None,
        "stream": False,
        "finish_reason": "stop",
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "usage_estimated": False,
        "cost_pusd": 4_500_000,
        "latency_ms": 1.5,
        "ttft_ms": None,
        "metadata": {"i": str(i)},
    }


async def _count(engine: Any, prefix: str) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).where(requests.c.id.like(f"{prefix}%"))
        return int((await conn.execute(query)).scalar_one())


async def test_a_full_queue_spills_to_disk_and_nothing_is_lost(
    database_url: str, tmp_path: Path
) -> None:
    engine = await open_engine(database_url)
    writer = LogWriter(
        engine, LogSettings(queue_size=4, batch_size=3, flush_interval=0.01), tmp_path
    )
    writer.start()
    try:
        rows = [{**_row(i), "id": f"spill-{tmp_path.name[-8:]}-{i:04d}"} for i in range(40)]
        for row in rows:  # no await in between: the writer cannot drain, the queue overflows
            writer.submit(row)
        assert writer.spilled == 36 and writer.spill_path.exists()
        await writer.flush()
        assert await _count(engine, f"spill-{tmp_path.name[-8:]}") == 40
        assert not writer.spill_path.exists()
    finally:
        await writer.close()
        await engine.dispose()


async def test_a_backlog_goes_in_larger_batches_and_the_spill_file_a_batch_at_a_time(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await open_engine(database_url)
    writer = LogWriter(
        engine, LogSettings(queue_size=20, batch_size=3, flush_interval=0.01), tmp_path
    )
    sizes: list[int] = []
    write = writer._write

    async def recording(batch: list[dict[str, Any]]) -> None:
        sizes.append(len(batch))
        await write(batch)

    monkeypatch.setattr(writer, "_write", recording)
    writer.start()
    prefix = f"backlog-{tmp_path.name[-8:]}"
    try:
        for i in range(50):  # 20 fit the queue, 30 spill
            writer.submit({**_row(i), "id": f"{prefix}-{i:04d}"})
        assert writer.spilled == 30
        await writer.flush()
        assert await _count(engine, prefix) == 50
    finally:
        await writer.close()
        await engine.dispose()
    # the queued backlog in batches of up to 4 x batch_size, the spilled rows 3 at a time
    assert sizes == [12, 8] + [3] * 10


async def _written(engine: Any, prefix: str, expected: int) -> int:
    """How many ``prefix`` rows are in the database once ``expected`` are, or after 5 s."""
    found = 0
    for _ in range(100):
        found = await _count(engine, prefix)
        if found >= expected:
            break
        await asyncio.sleep(0.05)
    return found


async def test_a_full_batch_is_written_without_waiting_for_the_interval(
    database_url: str, tmp_path: Path
) -> None:
    engine = await open_engine(database_url)
    writer = LogWriter(engine, LogSettings(batch_size=3, flush_interval=60.0), tmp_path)
    writer.start()
    prefix = f"full-{tmp_path.name[-8:]}"
    try:
        for i in range(3):
            writer.submit({**_row(i), "id": f"{prefix}-{i:04d}"})
            await asyncio.sleep(0.01)  # the writer is waiting out its window by now
        assert await _written(engine, prefix, 3) == 3  # no flush(): the third row woke it
    finally:
        await writer.close()
        await engine.dispose()


async def test_a_row_that_comes_during_a_backlog_is_written_without_more_traffic(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten rows queued at once: the first 8 go (batch_size 2, four batches' worth at most);
    seven more come while they are written, into a queue that is not empty, so none wakes the
    writer. The next batch takes 8 of the 9 queued, and the one left is still written, one
    interval later, with no flush and nothing else coming."""
    engine = await open_engine(database_url)
    writer = LogWriter(engine, LogSettings(batch_size=2, flush_interval=0.05), tmp_path)
    prefix = f"during-{tmp_path.name[-8:]}"
    sizes: list[int] = []
    write = writer._write

    async def submitting(batch: list[dict[str, Any]]) -> None:
        sizes.append(len(batch))
        if len(sizes) == 1:
            for i in range(10, 17):
                writer.submit({**_row(i), "id": f"{prefix}-{i:04d}"})
        await write(batch)

    monkeypatch.setattr(writer, "_write", submitting)
    writer.start()
    try:
        for i in range(10):
            writer.submit({**_row(i), "id": f"{prefix}-{i:04d}"})
        assert await _written(engine, prefix, 17) == 17
    finally:
        await writer.close()
        await engine.dispose()
    assert sizes == [8, 8, 1]


async def test_close_flushes_everything_accepted(database_url: str, tmp_path: Path) -> None:
    engine = await open_engine(database_url)
    writer = LogWriter(engine, LogSettings(flush_interval=5.0), tmp_path)
    writer.start()
    prefix = f"close-{tmp_path.name[-8:]}"
    for i in range(25):
        writer.submit({**_row(i), "id": f"{prefix}-{i:04d}"})
    await writer.close()
    assert await _count(engine, prefix) == 25
    await engine.dispose()


async def test_migrations_are_idempotent(database_url: str) -> None:
    for _ in range(2):
        engine = await open_engine(database_url)
        async with engine.connect() as conn:
            await conn.execute(select(func.count()).select_from(requests))
        await engine.dispose()


async def test_a_sqlite_backlog_goes_in_one_hand_over_and_a_batch_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows queued beyond a batch go to SQLite on the writer's own connection in one
    hand-over per write; a batch that kept up goes through the engine, statement by statement."""
    from meterline.store.inserts import SQLiteBatches

    engine = await open_engine(f"sqlite:///{tmp_path / 'log.db'}")
    writer = LogWriter(engine, LogSettings(batch_size=3, flush_interval=0.01), tmp_path)
    own: list[int] = []
    write = SQLiteBatches.write

    async def counting(self: SQLiteBatches, statements: list[Any]) -> None:
        own.append(len(statements))
        await write(self, statements)

    monkeypatch.setattr(SQLiteBatches, "write", counting)
    writer.start()
    try:
        for i in range(10):  # queued at once: a backlog of 10 rows, one write of up to 12
            writer.submit({**_row(i), "id": f"own-{i:04d}"})
        await writer.flush()
        writer.submit({**_row(10), "id": "own-0010"})  # one row: the engine's way
        await writer.flush()
        assert await _count(engine, "own-") == 11
    finally:
        await writer.close()
        await engine.dispose()
    assert own == [1]  # the backlog: one hand-over (one statement of 16 rows, 6 of them padding)
