"""What every simulated provider shares: the aiohttp server on loopback, scripted faults, a record
of what was received, stream counters, and the latency model."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

from aiohttp import web

from meterline.sim.settings import SimSettings

__all__ = ["SimServer"]

FaultT = TypeVar("FaultT")


class SimServer(Generic[FaultT]):
    """Subclasses add their routes in :meth:`routes`; ``base_path`` is appended to the
    ``base_url`` :meth:`start` returns (``/v1`` where the SDK convention includes it)."""

    base_path = ""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.faults: deque[FaultT] = deque()
        self.received: list[dict[str, Any]] = []
        self.received_headers: list[dict[str, str]] = []
        self.cancelled_streams = 0
        self.completed_streams = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail_next(self, *faults: FaultT) -> None:
        self.faults.extend(faults)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}{self.base_path}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hang(self, request: web.Request) -> web.Response:
        """Answer nothing until the client gives up (a stuck upstream)."""
        while request.transport is not None and not request.transport.is_closing():
            await asyncio.sleep(0.02)
        return web.Response(status=499)

    def _delay(self, base: float) -> float:
        if not base:
            return 0.0
        jitter = self.settings.rng.uniform(-1, 1) * self.settings.jitter * base
        return max(0.0, base + jitter)
