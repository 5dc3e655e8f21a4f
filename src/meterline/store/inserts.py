"""Bulk inserts for the log writer: the statement is compiled once per dialect and set of
columns, values go through the column types' own bind processors (in slices, yielding to the
event loop between them), and the driver runs it. SQLAlchemy's per-row parameter building,
which this replaces, held the event loop for milliseconds per batch.

On SQLite one statement carries many rows (``VALUES (…), (…), …``). ``executemany`` steps the
statement once per row, and the driver lets go of the interpreter lock for every step; with the
event loop saturated, taking the lock back waited up to a switch interval (5 ms) each time, so
the writer managed a few hundred rows a second and fell behind the traffic it logs. Chunks are
sized in powers of two (at most ``_ROWS_PER_STATEMENT``): a handful of statements per batch,
each awaited once, and a handful of statement texts for SQLite's statement cache instead of
one per batch length. PostgreSQL (asyncpg) keeps ``executemany``, which it pipelines itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["BulkInsert"]

# Bound parameters one SQLite statement may hold (SQLITE_MAX_VARIABLE_NUMBER's default).
_SQLITE_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_ROWS_PER_STATEMENT = 512
_SLICE = 100  # rows converted between two yields to the event loop


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # parameter order
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool


class BulkInsert:
    """``INSERT INTO table`` for batches of row dicts that all have the same keys."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}

    def _plan(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan:
        found = self._plans.get((dialect.name, keys))
        if found is None:
            compiled = insert(self.table).compile(dialect=dialect, column_keys=list(keys))
            positional = bool(compiled.positional)
            names = tuple(compiled.positiontup or ()) if positional else keys
            columns = self.table.c
            processors = tuple(
                columns[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            )
            found = _Plan(str(compiled), names, processors, positional)
            self._plans[(dialect.name, keys)] = found
        return found

    async def run(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (grouped by their keys) in the current transaction."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        for keys, group in groups.items():
            plan = self._plan(conn.dialect, keys)
            if not set(plan.names) <= set(keys):  # a column default to fill in: SQLAlchemy's way
                await conn.execute(insert(self.table), group)
                continue
            params = await _convert(plan, group)
            if conn.dialect.name == "sqlite" and plan.positional:
                await _insert_many_rows(conn, plan, params)
            else:
                await conn.exec_driver_sql(plan.sql, params)


async def _insert_many_rows(conn: AsyncConnection, plan: _Plan, params: list[Any]) -> None:
    """``INSERT … VALUES (…), (…), …`` over chunks of 2^k rows, largest first."""
    head, _, one = plan.sql.partition(" VALUES ")
    most = min(_ROWS_PER_STATEMENT, _SQLITE_VARIABLES // max(1, len(plan.names)))
    size = 1 << (max(1, most).bit_length() - 1)
    start = 0
    while start < len(params):
        while size > len(params) - start:
            size //= 2
        chunk = params[start : start + size]
        sql = f"{head} VALUES {', '.join([one] * size)}"
        await conn.exec_driver_sql(sql, tuple(value for row in chunk for value in row))
        start += size


async def _convert(plan: _Plan, rows: list[dict[str, Any]]) -> list[Any]:
    """Driver parameters for ``rows``, yielding to the event loop between slices."""
    pairs = list(zip(plan.names, plan.processors, strict=True))
    out: list[Any] = []
    for start in range(0, len(rows), _SLICE):
        if start:
            await asyncio.sleep(0)
        for row in rows[start : start + _SLICE]:
            values = [row[name] if p is None else p(row[name]) for name, p in pairs]
            out.append(tuple(values) if plan.positional else dict(zip(plan.names, values)))  # noqa: B905
    return out
