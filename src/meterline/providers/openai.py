"""OpenAI Chat Completions upstream (``/v1/chat/completions``, bearer auth, SSE streams)."""

from __future__ import annotations

import orjson

from meterline.providers.base import ProviderDeps
from meterline.providers.http import UpstreamCall
from meterline.settings import ProviderSettings
from meterline.types import ChatChunk, ChatRequest, ChatResponse, ChunkStream, Relayed
from meterline.wire.openai_request import encode_request
from meterline.wire.openai_response import decode_chunk, decode_error, decode_response
from meterline.wire.sse import SSEEvent

__all__ = ["OpenAIProvider"]


class OpenAIProvider:
    """OpenAI itself. Sends ``max_completion_tokens``, which every current OpenAI model takes.

    A request from an OpenAI-format client is relayed (``ChatRequest.wire``): its extra fields
    and content parts go on as sent, and the answer comes back as the upstream wrote it, with
    the routed model's name in ``model`` and, in a stream, the usage the client did not ask
    for taken out. Another format's extra fields (Anthropic's ``thinking``, ``top_k``…) are
    not sent: OpenAI would refuse them."""

    wire = "openai"
    max_tokens_field = "max_completion_tokens"
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        self.name = settings.name
        self.settings = settings
        self.deps = deps
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        key = deps.api_key(settings)
        self.headers = {"content-type": "application/json", **settings.headers}
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        self.http = deps.http(settings, decode_error)
        self._discovered: list[str] | None = None

    def _call(self, request: ChatRequest) -> UpstreamCall:
        passthrough = request.wire is None or request.wire == self.wire
        body = encode_request(
            request, max_tokens_field=self.max_tokens_field, passthrough=passthrough
        )
        return UpstreamCall(
            "POST", f"{self.base_url}/chat/completions", self.headers, orjson.dumps(body)
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        body = orjson.loads(await self.http.send(self._call(request)))
        relayed = Relayed(self.wire, body) if request.wire == self.wire else None
        return decode_response(body, relayed)

    def stream(self, request: ChatRequest) -> ChunkStream:
        if request.wire != self.wire:
            return self.http.decoded(self._call(request), self._decode_event)
        shown, usage_asked = request.model, request.include_usage

        def relay(event: SSEEvent) -> tuple[list[ChatChunk], bytes]:
            """The event's chunks, and the event as the client gets it."""
            if event.data == "[DONE]":
                return [], b""  # the surface ends the stream with its own
            body = self._event_body(event)
            chunks = decode_chunk(body)
            if not isinstance(body, dict):
                return chunks, b""
            changed = body.get("model", shown) != shown
            if changed:
                body["model"] = shown
            if not usage_asked and "usage" in body:
                if body["usage"] is not None and not body.get("choices"):
                    return chunks, b""  # the usage chunk the gateway asked for itself
                del body["usage"]
                changed = True
            data = orjson.dumps(body) if changed else event.data.encode()
            return chunks, b"data: " + data + b"\n\n"

        return self.http.relayed(self._call(request), relay)

    def _event_body(self, event: SSEEvent) -> object:
        body = orjson.loads(event.data)
        if isinstance(body, dict) and body.get("error") and not body.get("choices"):
            raise decode_error(500, body, {}, self.name)
        return body

    def _decode_event(self, event: SSEEvent) -> list[ChatChunk]:
        if event.data == "[DONE]":
            return []
        return decode_chunk(self._event_body(event))

    async def list_models(self) -> list[str]:
        configured = [m.name for m in self.settings.models]
        known = [m.name for m in self.deps.catalog.for_provider(self.name)]
        return list(dict.fromkeys(configured + known))

    async def discover(self) -> list[str]:
        """Ask the upstream's ``GET /models`` (once) for what it serves."""
        if self._discovered is None:
            raw = await self.http.send(UpstreamCall("GET", f"{self.base_url}/models", self.headers))
            body = orjson.loads(raw)
            self._discovered = [str(m["id"]) for m in body.get("data", []) if "id" in m]
        return self._discovered

    async def aclose(self) -> None:
        """The shared connection pool belongs to the app; nothing of our own to close."""
