"""OpenAI Chat Completions upstream (``/v1/chat/completions``, bearer auth, SSE streams)."""

from __future__ import annotations

import orjson

from meterline.providers.base import ProviderDeps
from meterline.providers.http import UpstreamCall
from meterline.settings import ProviderSettings
from meterline.types import ChatChunk, ChatRequest, ChatResponse, ChunkStream
from meterline.wire.openai_request import encode_request
from meterline.wire.openai_response import decode_chunk, decode_error, decode_response
from meterline.wire.sse import SSEEvent

__all__ = ["OpenAIProvider"]


class OpenAIProvider:
    """OpenAI itself. Sends ``max_completion_tokens``, which every current OpenAI model takes."""

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
        body = encode_request(request, max_tokens_field=self.max_tokens_field)
        return UpstreamCall(
            "POST", f"{self.base_url}/chat/completions", self.headers, orjson.dumps(body)
        )

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raw = await self.http.send(self._call(request))
        return decode_response(orjson.loads(raw))

    def stream(self, request: ChatRequest) -> ChunkStream:
        return self.http.decoded(self._call(request), self._decode_event)

    def _decode_event(self, event: SSEEvent) -> list[ChatChunk]:
        if event.data == "[DONE]":
            return []
        body = orjson.loads(event.data)
        if isinstance(body, dict) and body.get("error") and not body.get("choices"):
            raise decode_error(500, body, {}, self.name)
        return decode_chunk(body)

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
