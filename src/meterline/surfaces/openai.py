"""The OpenAI-compatible surface: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.routing import Route

from meterline.errors import GatewayError
from meterline.pipeline import RequestContext
from meterline.surfaces.base import Surface
from meterline.surfaces.http import LastPiece
from meterline.types import ChatRequest, ChatResponse, ChunkStream, LastBatch, RelayBatch
from meterline.wire.openai_request import decode_request
from meterline.wire.openai_response import (
    StreamEncoder,
    encode_error,
    encode_response,
    relayed_response,
)
from meterline.wire.sse import encode_event

__all__ = ["OpenAISurface"]

_DONE = b"data: [DONE]\n\n"


def _model_name(ctx: RequestContext) -> str:
    return ctx.route.model.name if ctx.route else ctx.request.model


class OpenAISurface(Surface):
    name = "openai"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.handle, methods=["POST"]),
            Route("/chat/completions", self.handle, methods=["POST"]),
        ]

    def decode(self, body: Any, headers: dict[str, str]) -> ChatRequest:
        return decode_request(body)

    def encode_response(self, ctx: RequestContext, response: ChatResponse) -> Any:
        relayed = response.relayed
        if relayed is not None and relayed.wire == "openai":
            return relayed_response(relayed.body, response, _model_name(ctx))
        return encode_response(response, _model_name(ctx))

    def encode_error(self, error: GatewayError) -> Any:
        return encode_error(error)

    async def encode_stream(self, ctx: RequestContext, reads: ChunkStream) -> AsyncIterator[bytes]:
        encoder = StreamEncoder(
            f"chatcmpl-{ctx.request_id}", _model_name(ctx), include_usage=ctx.request.include_usage
        )
        held = b""  # a last batch's events: sent with [DONE] and the answer's end, in one write
        try:
            async for chunks in reads:
                if isinstance(chunks, RelayBatch):  # the upstream's own events (OpenAIProvider)
                    frames, last = chunks.wire, chunks.last
                else:
                    frames = b"".join(encode_event(b) for c in chunks for b in encoder.encode(c))
                    last = chunks.__class__ is LastBatch
                if last:
                    held += frames
                elif frames:
                    yield held + frames
                    held = b""
            yield LastPiece(held + _DONE)
        except GatewayError as exc:
            # Headers are gone already; OpenAI reports a mid-stream failure as an error event.
            yield LastPiece(held + encode_event(orjson.dumps(encode_error(exc))))
        finally:
            await reads.aclose()  # type: ignore[attr-defined]
