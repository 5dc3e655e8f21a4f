"""A short way in for the chat routes: ``POST /v1/chat/completions`` and ``POST /v1/messages``
go straight to their surface's handler instead of through Starlette's middleware and router.

Those layers cost a measurable share of a forwarded request (each wraps ``send`` and the
router matches every route in turn) and do nothing for these routes: the surface turns every
failure into its own error JSON itself. Everything else — admin API, lifespan, other paths and
methods, an app mounted under a root path — goes to the wrapped app unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ChatFastPath", "Handler"]

Handler = Callable[[Request], Awaitable[ASGIApp]]


class ChatFastPath:
    def __init__(self, app: ASGIApp, handlers: Mapping[str, Handler]) -> None:
        self.app = app
        self.handlers = dict(handlers)  # path → handler, POST only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            handler = self.handlers.get(scope["path"])
            if handler is not None:
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
