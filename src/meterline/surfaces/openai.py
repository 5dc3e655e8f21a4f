"""The OpenAI-compatible surface: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.errors import GatewayError
from meterline.pipeline import RequestContext
from meterline.surfaces.http import (
    EventStreamResponse,
    gateway_headers,
    json_response,
    metadata_from_headers,
    read_json,
)
from meterline.types import ChatChunk, ChatResponse
from meterline.wire.openai_request import decode_request
from meterline.wire.openai_response import StreamEncoder, encode_error, encode_response
from meterline.wire.sse import encode_event

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["OpenAISurface", "error_response"]

log = logging.getLogger("meterline.surfaces")


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    return json_response(encode_error(error), error.status, {**error.headers, **(headers or {})})


class OpenAISurface:
    name = "openai"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    async def chat_completions(self, request: Request) -> Response | EventStreamResponse:
        ctx: RequestContext | None = None
        try:
            body = await read_json(request, self.gateway.settings.server.max_body_bytes)
            chat = decode_request(body)
            ctx = RequestContext(
                chat,
                self.name,
                headers=request.headers,
                metadata=metadata_from_headers(request.headers),
            )
            reply = await self.gateway.pipeline.run(ctx)
        except GatewayError as exc:
            return error_response(exc, gateway_headers(ctx, final=True) if ctx else None)
        except Exception:
            log.exception("unexpected failure handling a chat completion")
            error = GatewayError("internal gateway error; see the gateway log")
            return error_response(error, gateway_headers(ctx, final=True) if ctx else None)
        if isinstance(reply, ChatResponse):
            return json_response(
                encode_response(reply, ctx.route.model.name if ctx.route else None),
                headers=gateway_headers(ctx, final=True),
            )
        return EventStreamResponse(self._sse(ctx, reply), gateway_headers(ctx, final=False))

    async def _sse(
        self, ctx: RequestContext, chunks: AsyncIterator[ChatChunk]
    ) -> AsyncIterator[bytes]:
        model = ctx.route.model.name if ctx.route else ctx.request.model
        encoder = StreamEncoder(
            f"chatcmpl-{ctx.request_id}", model, include_usage=ctx.request.include_usage
        )
        try:
            async for chunk in chunks:
                for body in encoder.encode(chunk):
                    yield encode_event(orjson.dumps(body))
            yield b"data: [DONE]\n\n"
        except GatewayError as exc:
            # Headers are gone already; OpenAI reports a mid-stream failure as an error event.
            yield encode_event(orjson.dumps(encode_error(exc)))
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def models(self, request: Request) -> Response:
        data = [
            {"id": model_id, "object": "model", "created": 0, "owned_by": owner}
            for model_id, owner in await self.gateway.model_ids()
        ]
        return json_response({"object": "list", "data": data})
