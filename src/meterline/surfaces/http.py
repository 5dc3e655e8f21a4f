"""HTTP plumbing shared by the surfaces: bounded body reading, JSON answers, SSE answers
that notice a client leaving, and the ``x-meterline-*`` headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from meterline.catalog import usd_str
from meterline.errors import InvalidRequest, PayloadTooLarge
from meterline.pipeline import RequestContext

__all__ = [
    "EventStreamResponse",
    "LastPiece",
    "gateway_headers",
    "header_dict",
    "json_response",
    "metadata_from_headers",
    "read_json",
]

_METADATA_PREFIX = "x-meterline-metadata-"


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON; 413 past ``limit`` bytes, 400 if it is not JSON.

    The body is read from the ASGI ``receive`` channel itself: Starlette's header parsing and
    body generator cost a measurable part of a forwarded request and add nothing here."""
    for name, value in request.scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise PayloadTooLarge(f"request body is {int(value)} bytes; the limit is {limit}")
            break
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not raw:
        raise InvalidRequest("the request body is empty; send a JSON object", param="body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", param="body") from None


class _JSONResponse(Response):
    """A Starlette response whose header list is built in one pass (the base class's general
    header handling was a measurable part of answering every chat request)."""

    media_type = "application/json"

    def __init__(self, data: Any, status: int, headers: dict[str, str] | None) -> None:
        self.status_code = status
        self.background = None
        self.body = body = orjson.dumps(data)
        raw = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers = raw


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _JSONResponse(data, status, headers)


def header_dict(request: Request) -> dict[str, str]:
    """The request's headers as a plain dict (names are lower case; of a repeated name, the
    first), for the stages that look several of them up per request."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(request.scope["headers"])}


def metadata_from_headers(headers: Any) -> dict[str, str]:
    """``x-meterline-metadata-<name>: value`` request headers → ``{name: value}``."""
    return {
        k[len(_METADATA_PREFIX) :]: v
        for k, v in headers.items()
        if k.startswith(_METADATA_PREFIX) and len(k) > len(_METADATA_PREFIX)
    }


def gateway_headers(ctx: RequestContext, *, final: bool) -> dict[str, str]:
    """The ``x-meterline-*`` answer headers; a stream's start has no cost yet (``final=False``)."""
    headers = {
        "x-meterline-request-id": ctx.request_id,
        "x-task-id": ctx.request_id,
        **ctx.response_headers,
    }
    if ctx.route is not None:
        headers["x-meterline-route-reason"] = ctx.route.reason.encode("ascii", "replace").decode()
    if final and ctx.outcome is not None:
        headers["x-meterline-cost-usd"] = usd_str(ctx.outcome.cost)
        headers["x-meterline-latency-ms"] = f"{ctx.outcome.latency_ms:.1f}"
    elif not final:
        headers["x-meterline-latency-ms"] = f"{ctx.elapsed_ms():.1f}"
    return headers


class LastPiece(bytes):
    """The last piece of an event stream's body (the closing event, or an error event): sent
    with the end of the chunked answer in one socket write instead of two."""

    __slots__ = ()


class EventStreamResponse:
    """Streams ``body`` as ``text/event-stream``; a :class:`LastPiece` ends it.

    The body streams in the request's own task; a watcher task listens for ``http.disconnect``
    meanwhile. When the client leaves, the watcher cancels the streaming, and the body iterator
    is closed at once, which cancels the upstream request. (One task per stream: streaming in a
    second task, and waiting for the first of the two to end, cost more than the rest of this
    class.)
    """

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        self.body = body
        self.headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            **headers,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.encode(), v.encode()) for k, v in self.headers.items()],
            }
        )
        task = asyncio.current_task()
        assert task is not None
        streaming, gone = True, False

        def leave() -> None:
            nonlocal gone
            if streaming:
                gone = True
                task.cancel()

        watcher = asyncio.create_task(self._watch(receive, leave))
        try:
            await self._stream(send)
        except asyncio.CancelledError:
            if not gone or task.cancelling() > 1:
                raise  # not (only) ours: a shutdown, say
            task.uncancel()
        except OSError:
            pass  # the connection broke under a write
        finally:
            streaming = False
            watcher.cancel()

    async def _stream(self, send: Send) -> None:
        try:
            async for data in self.body:
                last = data.__class__ is LastPiece
                await send({"type": "http.response.body", "body": data, "more_body": not last})
                if last:
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.body.aclose()  # type: ignore[attr-defined]

    @staticmethod
    async def _watch(receive: Receive, leave: Callable[[], None]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        leave()
