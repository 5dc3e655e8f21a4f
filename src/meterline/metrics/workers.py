"""Metrics across the workers of ``serve --workers N``: a scrape reaches one worker, so each
worker writes its counts to a file of its own in a directory they share (once a second, and
when it stops), and the worker that is asked adds the others' latest files to its own counts.

The files are small (a few kB) and written off the event loop. A worker that died leaves its
file, so the sums never go down; the directory (made by ``serve`` in ``/dev/shm``) is removed
when the server stops. Counts from other workers are up to a second old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

import orjson

from meterline.metrics.registry import Metrics, Snapshot, merged

__all__ = ["WorkerSnapshots"]

log = logging.getLogger("meterline.metrics")

_EVERY = 1.0  # seconds between two writes of this worker's file


class WorkerSnapshots:
    def __init__(self, metrics: Metrics, directory: Path) -> None:
        self.metrics = metrics
        self.directory = directory
        self.path = directory / f"worker-{os.getpid()}.json"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="meterline-metrics-snapshots")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._write()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(_EVERY)
            await self._write()

    async def _write(self) -> None:
        data = orjson.dumps(self.metrics.snapshot())  # taken on the loop: a consistent view
        try:
            await asyncio.to_thread(_replace, self.path, data)
        except OSError as exc:
            log.warning("writing the metrics snapshot %s failed: %s", self.path, exc)

    async def combined(self) -> Snapshot:
        """This worker's counts now, plus every other worker's latest file."""
        others = await asyncio.to_thread(self._others)
        return merged([self.metrics.snapshot(), *others])

    def _others(self) -> list[Snapshot]:
        found = []
        for path in self.directory.glob("worker-*.json"):
            if path == self.path:
                continue
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                found.append(orjson.loads(path.read_bytes()))
        return found


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` at once for readers: a whole old file or a whole new one."""
    part = path.with_suffix(".part")
    part.write_bytes(data)
    os.replace(part, path)
