"""A process of its own that opens (and so migrates) a database once every process is ready
(kept apart from the tests so that a spawned process imports little else)."""

from __future__ import annotations

import asyncio
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from meterline.store import open_engine


def migrate(url: str, start: Barrier, out: Queue[str]) -> None:
    async def run() -> None:
        engine = await open_engine(url)
        await engine.dispose()

    start.wait()
    try:
        asyncio.run(run())
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test, which shows it
        out.put(f"{exc.__class__.__name__}: {exc}"[:300])
