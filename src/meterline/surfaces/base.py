"""What every client-facing surface shares: read → decode → pipeline → encode, and errors.

A surface subclass supplies the wire format: how to decode a request, encode a response, a
stream and an error. The flow, the headers and the never-a-traceback rule live here once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from meterline.errors import GatewayError
from meterline.pipeline import RequestContext
from meterline.surfaces.http import (
    EventStreamResponse,
    gateway_headers,
    header_dict,
    json_response,
    metadata_from_headers,
    read_json,
)
from meterline.types import ChatRequest, ChatResponse, ChunkStream

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["Surface"]

log = logging.getLogger("meterline.surfaces")


class Surface(ABC):
    name: str

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @abstractmethod
    def decode(self, body: Any, headers: dict[str, str]) -> ChatRequest:
        """The request in ``body``; ``headers`` (lower-case names) for what the format keeps of
        them (``ChatRequest.wire_headers``)."""
        ...

    @abstractmethod
    def encode_response(self, ctx: RequestContext, response: ChatResponse) -> Any: ...

    @abstractmethod
    def encode_stream(self, ctx: RequestContext, reads: ChunkStream) -> AsyncIterator[bytes]:
        """The SSE bytes to send: one piece per batch of chunks, so one write per read."""

    @abstractmethod
    def encode_error(self, error: GatewayError) -> Any: ...

    def headers(self, ctx: RequestContext | None, *, final: bool) -> dict[str, str]:
        return gateway_headers(ctx, final=final) if ctx is not None else {}

    def error_response(self, error: GatewayError, ctx: RequestContext | None = None) -> Response:
        headers = {**error.headers, **self.headers(ctx, final=True)}
        return json_response(self.encode_error(error), error.status, headers)

    async def handle(self, request: Request) -> Response | EventStreamResponse:
        """The whole request: decode, run the pipeline, answer in this surface's format."""
        ctx: RequestContext | None = None
        try:
            body = await read_json(request, self.gateway.settings.server.max_body_bytes)
            headers = header_dict(request)
            ctx = RequestContext(
                self.decode(body, headers), self.name, headers=headers,
                metadata=metadata_from_headers(headers),
            )  # fmt: skip
            reply = await self.gateway.pipeline.run(ctx)
        except GatewayError as exc:
            return self.error_response(exc, ctx)
        except Exception:
            log.exception("unexpected failure handling a %s request", self.name)
            return self.error_response(GatewayError("internal gateway error; see its log"), ctx)
        if isinstance(reply, ChatResponse):
            if not reply.id:  # some upstreams (Ollama, CLIs) give no id; ours is unique too
                reply = replace(reply, id=f"chatcmpl-{ctx.request_id}")
            headers = self.headers(ctx, final=True)
            return json_response(self.encode_response(ctx, reply), headers=headers)
        return EventStreamResponse(self.encode_stream(ctx, reply), self.headers(ctx, final=False))
