"""The batched request-log writer: the only thing that writes request rows.

The request path calls :meth:`LogWriter.submit`, which never waits: the row goes into a bounded
in-memory queue. One task drains it in batches of ``batch_size`` rows — up to four times that
while a backlog is queued, so a busy writer spends fewer round trips per row; on SQLite a
backlog goes to the database in one hand-over (``store.inserts.SQLiteBatches``). When the queue
is full the row is appended to a spill file on disk (never dropped); spilled rows are written
back, a batch at a time, once the queue is empty, and rows still queued at shutdown are flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.settings import LogSettings
from meterline.store.inserts import BulkInsert, SQLiteBatches
from meterline.store.schema import requests

__all__ = ["LogWriter"]

log = logging.getLogger("meterline.store")


def _encode(row: dict[str, Any]) -> bytes:
    return orjson.dumps({**row, "created_at": row["created_at"].isoformat()})


def _decode(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    return row


_BACKLOG_BATCHES = 4  # a batch takes up to this many times batch_size rows already queued


def _own_sqlite(engine: AsyncEngine) -> SQLiteBatches | None:
    """A connection of the writer's own for a SQLite file (``store.inserts.SQLiteBatches``);
    an in-memory database is private to the engine's connection, so it keeps the engine."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or url.query:
        return None  # in memory, or options only the engine's connections would honour
    return SQLiteBatches(str(url.database))


class LogWriter:
    def __init__(self, engine: AsyncEngine, settings: LogSettings, spill_dir: Path) -> None:
        self.engine = engine
        self.settings = settings
        self.spill_path = spill_dir / "requests.spill.jsonl"
        # Rows wait in a plain list, not an asyncio.Queue: a queue wakes the writer task for
        # every row; this wakes it for the first row of a batch and for a full batch.
        self._rows: list[dict[str, Any]] = []
        self._wake = asyncio.Event()  # rows arrived, a batch filled, a flush or a stop asked
        self._flushes: list[asyncio.Event] = []  # flush() calls waiting for the rows before them
        self._stopping = False
        self._spill: TextIO | None = None
        self._task: asyncio.Task[None] | None = None
        self._insert = BulkInsert(requests)
        self._sqlite = _own_sqlite(engine)
        self.written = 0
        self.spilled = 0
        self.observers: list[Callable[[dict[str, Any]], None]] = []  # see every submitted row

    def start(self) -> None:
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="meterline-log-writer")

    def submit(self, row: dict[str, Any]) -> None:
        """Queue ``row`` for writing; spill it to disk if the queue is full. Never blocks."""
        for observe in self.observers:
            observe(row)
        rows = self._rows
        if len(rows) >= self.settings.queue_size:
            self._spill_row(row)
            return
        rows.append(row)
        if len(rows) == 1 or len(rows) == self.settings.batch_size:
            self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._rows)

    def _spill_row(self, row: dict[str, Any]) -> None:
        if self._spill is None:
            self._spill = self.spill_path.open("a", encoding="utf-8")
        self._spill.write(_encode(row).decode() + "\n")
        self._spill.flush()
        self.spilled += 1

    async def _run(self) -> None:
        settings = self.settings
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._rows) < settings.batch_size and not self._asked():
                # The batch window: a full batch, a flush or a stop ends it early.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.flush_interval):
                        await self._wake.wait()
                self._wake.clear()
            flushes, self._flushes = self._flushes, []  # waiting for the rows queued by now
            stopping = self._stopping
            queued = len(self._rows)  # rows that come while these are written wait their turn
            while self._rows and (queued > 0 or stopping):
                batch = self._rows[: settings.batch_size * _BACKLOG_BATCHES]
                del self._rows[: len(batch)]
                queued -= len(batch)
                await self._write(batch)
            if self.spill_path.exists() and (not self._rows or flushes or stopping):
                await self._reclaim_spill()
            for done in flushes:
                done.set()
            if stopping:
                for done in self._flushes:
                    done.set()
                return
            if self._rows:  # came while earlier rows were still queued: no wake-up of their own
                self._wake.set()

    def _asked(self) -> bool:
        return bool(self._flushes) or self._stopping

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(3):
            try:
                await self._insert_batch(batch)
                self.written += len(batch)
                return
            except (SQLAlchemyError, sqlite3.Error):
                log.exception(
                    "writing %d request rows failed (attempt %d)", len(batch), attempt + 1
                )
                await asyncio.sleep(0.2 * 2**attempt)
        for row in batch:
            self._spill_row(row)

    async def _insert_batch(self, batch: list[dict[str, Any]]) -> None:
        # A backlog (more than a batch queued) goes to SQLite in one hand-over; a batch that
        # kept up goes statement by statement through the engine, which leaves the event loop
        # turns between statements (the single hand-over cost c=1 p99 1.24-1.31x; NOTES row 28).
        if self._sqlite is not None and len(batch) > self.settings.batch_size:
            statements = await self._insert.sqlite_statements(self.engine.dialect, batch)
            if statements is not None:
                await self._sqlite.write(statements)
                return
        async with self.engine.begin() as conn:
            await self._insert.run(conn, batch)

    async def _reclaim_spill(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        claimed = self.spill_path.with_suffix(".claimed")
        self.spill_path.rename(claimed)
        # A batch at a time: an overload can leave hundreds of thousands of rows in the file.
        with claimed.open("rb") as lines:
            while chunk := list(itertools.islice(lines, self.settings.batch_size)):
                await self._write([_decode(line) for line in chunk if line.strip()])
        claimed.unlink()

    async def flush(self) -> None:
        """Wait until every row submitted so far is in the database."""
        if self._task is None or self._task.done():
            return
        done = asyncio.Event()
        self._flushes.append(done)
        self._wake.set()
        await done.wait()

    async def close(self) -> None:
        """Write everything accepted, then stop: nothing is lost at shutdown."""
        if self._task is not None and not self._task.done():
            self._stopping = True
            self._wake.set()
            await self._task
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        if self._sqlite is not None:
            await self._sqlite.close()
            self._sqlite = None
