"""The Anthropic-compatible surface: ``POST /v1/messages`` and ``/v1/messages/count_tokens``.

Claude Code and the ``anthropic`` SDK point here with ``ANTHROPIC_BASE_URL`` (no ``/v1``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.errors import GatewayError
from meterline.pipeline import RequestContext
from meterline.surfaces.base import Surface
from meterline.surfaces.http import LastPiece, header_dict, json_response, read_json
from meterline.tokens import count_messages
from meterline.types import ChatRequest, ChatResponse, ChunkStream, LastBatch, RelayBatch
from meterline.wire.anthropic_request import decode_request
from meterline.wire.anthropic_response import (
    StreamEncoder,
    encode_error,
    encode_response,
    frame,
    ping,
)

__all__ = ["AnthropicSurface"]

# count_tokens bodies carry no max_tokens; the decoder insists on one, so lend it a dummy.
_COUNT_ONLY_MAX_TOKENS = 1


class AnthropicSurface(Surface):
    name = "anthropic"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.handle, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    def decode(self, body: Any, headers: dict[str, str]) -> ChatRequest:
        beta = headers.get("anthropic-beta")
        return decode_request(body, wire_headers={"anthropic-beta": beta} if beta else None)

    def headers(self, ctx: RequestContext | None, *, final: bool) -> dict[str, str]:
        headers = super().headers(ctx, final=final)
        if ctx is not None:
            headers["request-id"] = f"req_{ctx.request_id}"
        return headers

    def encode_response(self, ctx: RequestContext, response: ChatResponse) -> Any:
        model = ctx.route.model.name if ctx.route else ctx.request.model
        relayed = response.relayed
        if relayed is not None and relayed.wire == "anthropic":
            return {**relayed.body, "model": model}  # as the upstream wrote it (AnthropicProvider)
        return encode_response(response, model)

    def encode_error(self, error: GatewayError) -> Any:
        return encode_error(error)

    async def encode_stream(self, ctx: RequestContext, reads: ChunkStream) -> AsyncIterator[bytes]:
        model = ctx.route.model.name if ctx.route else ctx.request.model
        encoder = StreamEncoder()
        pending = b""  # the start, and a last batch's events: written with what follows them
        started = relayed = False
        try:
            usage = None
            async for chunks in reads:
                for chunk in chunks:
                    usage = chunk.usage or usage
                if isinstance(chunks, RelayBatch):  # the upstream's own events, its start too
                    relayed = True
                    frames, last = chunks.wire, chunks.last
                else:
                    if not started:
                        # Anthropic announces the prompt size up front; the upstream's count
                        # comes at the end, so the start carries the local tokenizer's count
                        # and message_delta the billed one.
                        prompt = count_messages(ctx.request, model)
                        start = encoder.start(f"msg_{ctx.request_id}", model, prompt) + [ping()]
                        pending = b"".join(frame(*event) for event in start)
                    frames = b"".join(frame(*e) for c in chunks for e in encoder.encode(c))
                    last = chunks.__class__ is LastBatch
                started = True
                if last:  # sent with the stream's end, in one write
                    pending += frames
                elif frames:
                    yield pending + frames
                    pending = b""
            end = b"" if relayed else b"".join(frame(*event) for event in encoder.finish(usage))
            yield LastPiece(pending + end)
        except GatewayError as exc:
            yield LastPiece(pending + frame("error", encode_error(exc)))
        finally:
            await reads.aclose()  # type: ignore[attr-defined]

    async def count_tokens(self, request: Request) -> Response:
        """The prompt's size: Anthropic's own count when the model is served by an Anthropic
        provider (the body goes on as sent, with the upstream's model name), else the local
        tokenizer's estimate."""
        headers = header_dict(request)
        try:
            if self.gateway.auth is not None:
                await self.gateway.auth.caller(headers)  # a key, once keys exist
            body = await read_json(request, self.gateway.settings.server.max_body_bytes)
            checked = body
            if isinstance(body, dict):
                checked = {**body, "max_tokens": body.get("max_tokens", _COUNT_ONLY_MAX_TOKENS)}
            chat = decode_request(checked)
            beta = headers.get("anthropic-beta")
            counted = await self.gateway.upstream_token_count(chat.model, body, beta)
        except GatewayError as exc:
            return self.error_response(exc)
        if counted is not None:
            return json_response(counted)
        return json_response({"input_tokens": count_messages(chat, chat.model)})
