"""Run fake upstreams and a real gateway (uvicorn, real sockets) on a background event loop,
so tests can drive them with the official synchronous SDK clients."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette

from meterline.app import create_app
from meterline.gateway import Gateway
from meterline.server import UVICORN_OPTIONS
from meterline.settings import (
    CacheSettings,
    CompressionConfig,
    FallbackSettings,
    LogSettings,
    ProviderSettings,
    RetrySettings,
    Settings,
)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackgroundLoop:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class LiveGateway:
    loop: BackgroundLoop
    app: Starlette
    server: uvicorn.Server
    port: int
    task: asyncio.Task[None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    def call(self, fn: Callable[[Gateway], Awaitable[T]]) -> T:
        async def run() -> T:
            return await fn(self.gateway)

        return self.loop.run(run())

    def flush(self) -> None:
        """Wait until every finished request's log row is in the database."""
        self.call(lambda g: g.writer.flush())

    def rows(self, token: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The request log through ``GET /api/requests`` once every row is written, oldest
        first (``token``: an admin or virtual key, when the gateway asks for one)."""
        self.flush()
        headers = {"authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(f"{self.url}/api/requests", params={"limit": limit}, headers=headers,
                         timeout=10)  # fmt: skip
        assert resp.status_code == 200, resp.text
        rows: list[dict[str, Any]] = resp.json()["data"]
        return rows[::-1]

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.should_exit = True
            if self.task is not None:
                await self.task

        self.loop.run(shutdown())


def provider_settings(tmp_path: Path, *providers: ProviderSettings) -> Settings:
    """A gateway in front of ``providers`` alone, as the provider tests drive it: one SQLite
    file, no cache, compression or fallback (each request reaches the provider asked for, as
    sent), quick retries and log flushes."""
    return Settings(
        cache=CacheSettings(enabled=False),
        compression=CompressionConfig(enabled=False),
        fallback=FallbackSettings(enabled=False),
        database_url=f"sqlite:///{tmp_path / 'gw.db'}",
        providers=providers,
        retry=RetrySettings(max_attempts=3, backoff_initial=0.01, backoff_max=2.0),
        log=LogSettings(flush_interval=0.05),
    )


def start_gateway(
    loop: BackgroundLoop, settings: Settings, env: dict[str, str] | None = None
) -> LiveGateway:
    app = create_app(settings, env=env or {})
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **UVICORN_OPTIONS
    )
    server = uvicorn.Server(config)
    live = LiveGateway(loop, app, server, port)

    async def boot() -> None:
        live.task = asyncio.create_task(server.serve())
        for _ in range(400):
            if server.started:
                return
            if live.task.done():
                live.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("the gateway did not start")

    loop.run(boot())
    return live
