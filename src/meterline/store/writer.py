"""The batched request-log writer: the only thing that writes request rows.

The request path calls :meth:`LogWriter.submit`, which never waits: the row goes into a bounded
in-memory queue. One task drains it in batches of ``batch_size`` rows — up to four times that
while a backlog is queued, so a busy writer spends fewer round trips per row. When the queue is
full the row is appended to a spill file on disk (never dropped); spilled rows are written back,
a batch at a time, once the queue is empty, and rows still queued at shutdown are flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.settings import LogSettings
from meterline.store.inserts import BulkInsert
from meterline.store.schema import requests

__all__ = ["LogWriter"]

log = logging.getLogger("meterline.store")


def _encode(row: dict[str, Any]) -> bytes:
    return orjson.dumps({**row, "created_at": row["created_at"].isoformat()})


def _decode(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    row["created_at"] = dt.datetime.fromisoformat(row["created_at"])
    return row


_Item = dict[str, Any] | asyncio.Event | None  # a row, a flush marker, or the stop marker
_NO_MARKER: dict[str, Any] = {}
_BACKLOG_BATCHES = 4  # a batch takes up to this many times batch_size rows already queued


class LogWriter:
    def __init__(self, engine: AsyncEngine, settings: LogSettings, spill_dir: Path) -> None:
        self.engine = engine
        self.settings = settings
        self.spill_path = spill_dir / "requests.spill.jsonl"
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(settings.queue_size)
        self._spill: TextIO | None = None
        self._task: asyncio.Task[None] | None = None
        self._insert = BulkInsert(requests)
        self.written = 0
        self.spilled = 0

    def start(self) -> None:
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="meterline-log-writer")

    def submit(self, row: dict[str, Any]) -> None:
        """Queue ``row`` for writing; spill it to disk if the queue is full. Never blocks."""
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self._spill_row(row)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _spill_row(self, row: dict[str, Any]) -> None:
        if self._spill is None:
            self._spill = self.spill_path.open("a", encoding="utf-8")
        self._spill.write(_encode(row).decode() + "\n")
        self._spill.flush()
        self.spilled += 1

    async def _next_batch(self) -> tuple[list[dict[str, Any]], _Item]:
        """Rows until the batch is full, the flush interval passes, or a marker arrives."""
        batch: list[dict[str, Any]] = []
        first = await self._queue.get()
        if not isinstance(first, dict):
            return batch, first
        batch.append(first)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.flush_interval):
                while len(batch) < self.settings.batch_size:
                    item = await self._queue.get()
                    if not isinstance(item, dict):
                        return batch, item
                    batch.append(item)
        most = self.settings.batch_size * _BACKLOG_BATCHES
        while len(batch) < most and not self._queue.empty():  # queued already: no waiting
            item = self._queue.get_nowait()
            if not isinstance(item, dict):
                return batch, item
            batch.append(item)
        return batch, _NO_MARKER

    async def _run(self) -> None:
        while True:
            batch, marker = await self._next_batch()
            if batch:
                await self._write(batch)
            if self._queue.empty() and self.spill_path.exists():
                await self._reclaim_spill()
            if isinstance(marker, asyncio.Event):
                marker.set()
            elif marker is None:
                return

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(3):
            try:
                async with self.engine.begin() as conn:
                    await self._insert.run(conn, batch)
                self.written += len(batch)
                return
            except SQLAlchemyError:
                log.exception(
                    "writing %d request rows failed (attempt %d)", len(batch), attempt + 1
                )
                await asyncio.sleep(0.2 * 2**attempt)
        for row in batch:
            self._spill_row(row)

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
        await self._queue.put(done)
        await done.wait()

    async def close(self) -> None:
        """Write everything accepted, then stop: nothing is lost at shutdown."""
        if self._task is not None and not self._task.done():
            await self._queue.put(None)
            await self._task
        if self._spill is not None:
            self._spill.close()
            self._spill = None
