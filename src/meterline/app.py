"""The ASGI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp

from meterline.admin import (
    AdminAPI,
    BudgetAPI,
    ExperimentsAPI,
    FeedbackAPI,
    KeysAPI,
    MetricsAPI,
    RoutingAPI,
)
from meterline.gateway import Gateway
from meterline.settings import Settings
from meterline.surfaces import AnthropicSurface, OpenAISurface
from meterline.surfaces.fastpath import ChatFastPath, Handler
from meterline.surfaces.models import ModelsEndpoint

__all__ = ["app_from_env", "create_app", "tune_gc"]


class _App(Starlette):
    """Starlette, with the chat routes taking the short way in (``surfaces/fastpath.py``)."""

    chat_handlers: dict[str, Handler]

    def build_middleware_stack(self) -> ASGIApp:
        return ChatFastPath(super().build_middleware_stack(), self.chat_handlers)


def tune_gc() -> None:
    """Freeze what start-up built (modules, the catalog, settings, the gateway's state) out of
    the collector's view and collect the young generation less often: a request allocates
    hundreds of short-lived objects, and full collections over the whole start-up heap showed
    up as latency spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 20, 20)


def create_app(
    settings: Settings, env: Mapping[str, str] | None = None, *, server: bool = False
) -> Starlette:
    """Build the app; resources are opened and closed by its lifespan. ``server``: this process
    serves only this app (``meterline serve`` and its workers), so the collector is tuned for it
    once the gateway has started."""
    gateway = Gateway(settings, env)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        if server:
            tune_gc()
        try:
            yield
        finally:
            await gateway.stop()

    openai, anthropic = OpenAISurface(gateway), AnthropicSurface(gateway)
    routes = [
        *openai.routes(),
        *anthropic.routes(),
        *ModelsEndpoint(gateway).routes(),
        *AdminAPI(gateway).routes(),
        *KeysAPI(gateway).routes(),
        *BudgetAPI(gateway).routes(),
        *RoutingAPI(gateway).routes(),
        *FeedbackAPI(gateway).routes(),
        *MetricsAPI(gateway).routes(),
        *ExperimentsAPI(gateway).routes(),
    ]
    app = _App(routes=routes, lifespan=lifespan)
    app.chat_handlers = {"/v1/chat/completions": openai.handle, "/chat/completions": openai.handle,
                         "/v1/messages": anthropic.handle}  # fmt: skip
    app.state.gateway = gateway
    return app


def app_from_env() -> Starlette:
    """The factory ``meterline serve --workers N`` hands to each worker process: settings come
    from ``METERLINE_CONFIG`` (a file) and the usual environment variables."""
    import os

    from meterline.settings import load_settings

    return create_app(load_settings(os.environ.get("METERLINE_CONFIG") or None), server=True)
