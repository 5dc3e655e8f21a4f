"""Bulk inserts for the log writer: the statement is compiled once per dialect and set of
columns, values go through the column types' own bind processors (in slices, yielding to the
event loop between them), and the driver runs it. SQLAlchemy's per-row parameter building,
which this replaces, held the event loop for milliseconds per batch.

On SQLite one statement carries many rows (``VALUES (…), (…), …``). ``executemany`` steps the
statement once per row, and the driver lets go of the interpreter lock for every step; with the
event loop saturated, taking the lock back waited up to a switch interval (5 ms) each time, so
the writer managed a few hundred rows a second and fell behind the traffic it logs. Rows go in
statements of 512 rows while that many are left, then of 64, then of 16, the last one padded
with rows of NULLs that a ``WHERE`` drops: a few statements per batch, each awaited once, never
more than 15 padding rows, and three statement texts, so SQLite's statement cache holds three
entries whatever the batch lengths (a text per length made the memory creep up in the soak as
new lengths came along; padding every batch to 512 rows cost quiet gateways more than the rows
they wrote). The driver binds a statement's values holding the interpreter lock, and the event
loop waits meanwhile: a moderate load (a few hundred rows per flush) gets 64-row statements, so
no single wait is long; 512-row statements only come with a backlog. Rows are converted 25 at a
time for the same reason, or 100 at a time in a batch of more than 512 rows: there the writer is
catching up, and on a busy loop each yield waits for everything else queued (25-row slices cost
5–8% of the throughput at saturation and let the backlog grow). A row's values are taken in one
C call (``operator.itemgetter``); only timestamps and JSON go through bind processors, since the
booleans' and floats' change nothing SQLite stores (~5 µs a row, was ~7).
PostgreSQL (asyncpg) keeps ``executemany``, which it pipelines itself.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import operator
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Float, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.store.db import sqlite_pragmas

__all__ = ["BulkInsert", "SQLiteBatches"]

# Bound parameters one SQLite statement may hold (SQLITE_MAX_VARIABLE_NUMBER's default).
_SQLITE_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_STATEMENT_ROWS = (512, 64, 16)  # rows per statement: the largest that many rows are left for
_SLICE = 25  # rows converted between two yields to the event loop
_SLICE_BACKLOG = 100  # the same for batches of more than 512 rows: a writer catching up
# Types whose bind processors change nothing that SQLite stores: booleans go through the
# adapter ``store.db`` registers (``int``), and integers in a REAL column are stored as REAL.
_SQLITE_NEEDLESS = (Boolean, Float)


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # parameter order
    values: Callable[[dict[str, Any]], tuple[Any, ...]]  # a row's values in ``names`` order
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (where in ``names``, processor)
    positional: bool
    key: int | None  # where the primary key's first column (never NULL) sits in ``names``

    def fills_defaults(self, keys: tuple[str, ...]) -> bool:
        """The statement names columns the rows lack (Python-side defaults to fill in), which
        only SQLAlchemy's own insert does."""
        return not set(self.names) <= set(keys)


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
            processors = []
            for where, name in enumerate(names):
                needless = dialect.name == "sqlite" and isinstance(columns[name].type,
                                                                   _SQLITE_NEEDLESS)  # fmt: skip
                processor = columns[name].type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None and not needless:
                    processors.append((where, processor))
            first = next(iter(self.table.primary_key.columns), None)
            key = names.index(first.name) if first is not None and first.name in names else None
            found = _Plan(str(compiled), names, _getter(names), tuple(processors), positional,
                          key)  # fmt: skip
            self._plans[(dialect.name, keys)] = found
        return found

    async def run(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (grouped by their keys) in the current transaction."""
        for keys, group in _groups(rows).items():
            plan = self._plan(conn.dialect, keys)
            if plan.fills_defaults(keys):
                await conn.execute(insert(self.table), group)
                continue
            params = await _convert(plan, group)
            if conn.dialect.name == "sqlite" and plan.positional and plan.key is not None:
                for sql, values in _many_rows(plan, plan.key, params):
                    await conn.exec_driver_sql(sql, values)
            else:
                await conn.exec_driver_sql(plan.sql, params)

    async def sqlite_statements(
        self, dialect: Dialect, rows: Sequence[dict[str, Any]]
    ) -> list[tuple[str, tuple[Any, ...]]] | None:
        """The multi-row statements that insert ``rows`` on SQLite, to run in one go on a
        connection of the caller's (:class:`SQLiteBatches`); ``None`` when a group of rows
        needs SQLAlchemy's own insert (a column with a Python-side default left out)."""
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for keys, group in _groups(rows).items():
            plan = self._plan(dialect, keys)
            if plan.fills_defaults(keys) or not plan.positional or plan.key is None:
                return None
            statements += _many_rows(plan, plan.key, await _convert(plan, group))
        return statements


class SQLiteBatches:
    """A SQLite connection of the log writer's own, on a thread of its own: a batch's
    statements and its commit go to that thread in one hand-over. Through the shared engine
    (aiosqlite) each statement was a hand-over of its own, and with the event loop saturated
    each waited for a turn of the loop and for the interpreter lock: a 2,000-row batch took
    ~600 ms at concurrency 50 against ~80 ms idle, and the backlog grew to thousands of rows.
    The writer uses it for backlogs only (``store.writer``): run back to back, the statements'
    binding holds the interpreter lock in longer stretches, which showed in the latency tail
    at low load."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="meterline-log-sqlite")
        self._db: sqlite3.Connection | None = None

    async def write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run ``statements`` in one transaction; raises ``sqlite3.Error`` if it failed."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._run, statements)

    def _run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        db = self._db
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(db)
            self._db = db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, values in statements:
                db.execute(sql, values)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _groups(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """``rows`` grouped by their keys (one statement shape per group)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return groups


def _many_rows(plan: _Plan, key: int, params: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """``INSERT … SELECT * FROM (VALUES (…), (…), …) WHERE <key column> IS NOT NULL`` per chunk,
    the last chunk padded with NULL rows (``key``: the index of a column that is never NULL)."""
    most = max(1, _SQLITE_VARIABLES // max(1, len(plan.names)))
    sizes = [min(most, size) for size in _STATEMENT_ROWS]
    padding = (None,) * len(plan.names)
    statements = []
    start = 0
    while start < len(params):
        size = next((s for s in sizes if s <= len(params) - start), sizes[-1])
        chunk = params[start : start + size]
        rows = chunk + [padding] * (size - len(chunk))
        values = tuple(itertools.chain.from_iterable(rows))
        statements.append((_padded_sql(plan.sql, key, size), values))
        start += size
    return statements


@functools.lru_cache(maxsize=16)
def _padded_sql(single: str, key: int, size: int) -> str:
    head, _, one = single.partition(" VALUES ")
    rows = ", ".join([one] * size)
    return f"{head} SELECT * FROM (VALUES {rows}) WHERE column{key + 1} IS NOT NULL"


def _getter(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) == 1:  # itemgetter of one name returns the value, not a 1-tuple
        only = names[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*names)


async def _convert(plan: _Plan, rows: list[dict[str, Any]]) -> list[Any]:
    """Driver parameters for ``rows``, yielding to the event loop between slices: the values
    taken in one C call per row, then the few that need it through their bind processors."""
    out: list[Any] = []
    step = _SLICE if len(rows) <= _STATEMENT_ROWS[0] else _SLICE_BACKLOG
    for start in range(0, len(rows), step):
        if start:
            await asyncio.sleep(0)
        for row in rows[start : start + step]:
            values = plan.values(row)
            if plan.processors:
                changed = list(values)
                for where, processor in plan.processors:
                    changed[where] = processor(changed[where])
                values = tuple(changed)
            out.append(values if plan.positional else dict(zip(plan.names, values)))  # noqa: B905
    return out
