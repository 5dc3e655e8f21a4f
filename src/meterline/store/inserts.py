"""Bulk inserts for the log writer: the statement is compiled once per dialect and set of
columns, values go through the column types' own bind processors, and the driver's
``executemany`` runs it. SQLAlchemy's per-row parameter building, which this replaces, held the
event loop for milliseconds per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["BulkInsert"]

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
            await conn.exec_driver_sql(plan.sql, params)


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
