"""The log writer's bulk insert stores exactly what SQLAlchemy's own insert stores, on SQLite
and PostgreSQL: every column, JSON nulls and objects, timestamps read back aware."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.store import inserts, open_engine
from meterline.store.inserts import BulkInsert, SQLiteBatches
from meterline.store.schema import requests


def _row(request_id: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {column.name: None for column in requests.c if column.name != "rating"}
    row |= {
        "id": request_id, "created_at": dt.datetime(2026, 3, 1, 12, 30, 5, 123456, dt.UTC),
        "tenant": "acme", "surface": "openai", "model_requested": "gpt-4o-mini", "status": "ok",
        "http_status": 200, "stream": True, "input_tokens": 19, "output_tokens": 9,
        "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
        "usage_estimated": False, "cost_pusd": 8_250_000, "latency_ms": 0.812,
        "cache_hit": False, "attempt": 1, "success": True,
    }  # fmt: skip
    return row | changes


async def test_same_rows_as_sqlalchemy_insert(database_url: str) -> None:
    engine = await open_engine(database_url)
    try:
        shapes = [{"metadata": None, "compression": {"dedup": 3}},
                  {"metadata": {"app": "x"}, "compression": None, "ttft_ms": 0.5},
                  {"latency_ms": 3, "success": False, "stream": False}]  # fmt: skip
        async with engine.begin() as conn:
            await BulkInsert(requests).run(
                conn, [_row(f"new{i}", **s) for i, s in enumerate(shapes)]
            )
            await conn.execute(
                insert(requests), [_row(f"old{i}", **s) for i, s in enumerate(shapes)]
            )
        async with engine.connect() as conn:
            raw = {r.id: r._asdict() for r in await conn.execute(text("SELECT * FROM requests"))}
            typed = {r.id: r._asdict() for r in await conn.execute(select(requests))}
            kinds = {}  # SQLite's storage class of every value (3 and 3.0 compare equal)
            if database_url.startswith("sqlite"):
                columns = ", ".join(f'typeof("{c.name}")' for c in requests.c)
                query = text(f"SELECT id, {columns} FROM requests")
                kinds = {r[0]: r[1:] for r in await conn.execute(query)}
    finally:
        await engine.dispose()
    for i in range(len(shapes)):
        assert {**raw[f"new{i}"], "id": ""} == {**raw[f"old{i}"], "id": ""}
        assert {**typed[f"new{i}"], "id": ""} == {**typed[f"old{i}"], "id": ""}
        assert kinds.get(f"new{i}") == kinds.get(f"old{i}")
    assert typed["new1"]["metadata"] == {"app": "x"}
    assert typed["new0"]["created_at"] == dt.datetime(2026, 3, 1, 12, 30, 5, 123456, dt.UTC)


async def test_rows_missing_columns_get_their_defaults(database_url: str) -> None:
    engine = await open_engine(database_url)
    try:
        row = _row("short")
        for name in ("tenant", "input_tokens", "attempt"):
            del row[name]
        async with engine.begin() as conn:
            await BulkInsert(requests).run(conn, [row, _row("full")])
        async with engine.connect() as conn:
            found = {r.id: r for r in await conn.execute(select(requests))}
    finally:
        await engine.dispose()
    assert (found["short"].tenant, found["short"].input_tokens, found["short"].attempt) == (
        "default",
        0,
        1,
    )
    assert found["full"].tenant == "acme"


async def test_many_rows_in_chunks_arrive_whole_and_in_order(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite 13 rows go in statements of 8, 4 and 2 rows (the last padded with a NULL row
    that is not inserted), on PostgreSQL through executemany; either way every row and
    value lands, floats and big integers exactly, and nothing else."""
    monkeypatch.setattr(inserts, "_STATEMENT_ROWS", (8, 4, 2))
    statements: list[int] = []  # rows per INSERT statement
    original = AsyncConnection.exec_driver_sql

    async def counting(self: AsyncConnection, sql: str, params: Any = None) -> Any:
        if sql.startswith("INSERT INTO requests"):
            statements.append(sql.count("(?") or len(params))
            if "(?" in sql:
                assert len(params) == sql.count("?")
        return await original(self, sql, params)

    monkeypatch.setattr(AsyncConnection, "exec_driver_sql", counting)
    rows = [_row(f"r{i:02}", latency_ms=i / 3, cost_pusd=2**62 + i, tenant=f"t{i}")
            for i in range(13)]  # fmt: skip
    engine = await open_engine(database_url)
    try:
        async with engine.begin() as conn:
            await BulkInsert(requests).run(conn, rows)
        async with engine.connect() as conn:
            found = {r.id: r for r in await conn.execute(select(requests))}
    finally:
        await engine.dispose()
    assert statements == ([8, 4, 2] if database_url.startswith("sqlite") else [13])
    assert sorted(found) == [f"r{i:02}" for i in range(13)]
    for i in range(13):
        row = found[f"r{i:02}"]
        assert (row.latency_ms, row.cost_pusd, row.tenant) == (i / 3, 2**62 + i, f"t{i}")


async def test_sqlite_binds_none_and_bool_through_registered_adapters(tmp_path: Any) -> None:
    """NULLs and booleans skip the sqlite3 module's failing adapter search (the costliest part
    of binding a log row) and are stored exactly as before: NULL, 0 and 1."""
    engine = await open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    await engine.dispose()
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    assert (bool, sqlite3.PrepareProtocol) in sqlite3.adapters
    with sqlite3.connect(":memory:") as con:
        row = con.execute("SELECT ?, typeof(?), ?, typeof(?), ?, typeof(?)",
                          (None, None, True, True, False, False)).fetchone()  # fmt: skip
    assert row == (None, "null", 1, "integer", 0, "integer")


async def test_sqlite_batches_store_what_sqlalchemy_stores(tmp_path: Any) -> None:
    """The log writer's own SQLite connection (one hand-over per batch) stores the same values
    and storage classes as SQLAlchemy's insert; a batch that fails is rolled back whole and the
    connection takes the next one."""
    path = tmp_path / "a.db"
    engine = await open_engine(f"sqlite:///{path}")
    batches = SQLiteBatches(str(path))
    shapes = [{"metadata": {"app": "x"}, "compression": None, "latency_ms": 3},
              {"metadata": None, "compression": {"dedup": 3}, "stream": False}]  # fmt: skip
    insert_ = BulkInsert(requests)
    try:
        new = [_row(f"new{i}", **shape) for i, shape in enumerate(shapes)]
        statements = await insert_.sqlite_statements(engine.dialect, new)
        assert statements is not None
        await batches.write(statements)
        clash = await insert_.sqlite_statements(engine.dialect, [_row("late"), _row("new0")])
        assert clash is not None
        with pytest.raises(sqlite3.IntegrityError):
            await batches.write(clash)  # new0 exists: nothing of this batch stays
        again = await insert_.sqlite_statements(engine.dialect, [_row("late")])
        assert again is not None
        await batches.write(again)
        async with engine.begin() as conn:
            await conn.execute(
                insert(requests), [_row(f"old{i}", **s) for i, s in enumerate(shapes)]
            )
        async with engine.connect() as conn:
            columns = ", ".join(
                f'"{c.name}", typeof("{c.name}")' for c in requests.c if c.name != "id"
            )
            found = {
                r[0]: r[1:] for r in await conn.execute(text(f"SELECT id, {columns} FROM requests"))
            }
    finally:
        await batches.close()
        await engine.dispose()
    assert sorted(found) == ["late", "new0", "new1", "old0", "old1"]
    for i in range(len(shapes)):
        assert found[f"new{i}"] == found[f"old{i}"]
