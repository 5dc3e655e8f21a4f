"""Ollama upstream: the native ``/api/chat`` (NDJSON streams) and ``/api/tags`` for models.

Local models cost nothing: a model the catalog does not know is priced at zero by the route
stage, so Ollama's token counts are logged with a cost of $0.
"""

from __future__ import annotations

import logging
from contextlib import aclosing

import orjson

from meterline.errors import ProviderError
from meterline.providers.base import ProviderDeps
from meterline.providers.http import UpstreamCall
from meterline.settings import ProviderSettings
from meterline.types import ChatRequest, ChatResponse, ChunkStream
from meterline.wire.ollama import (
    StreamDecoder,
    decode_error,
    decode_response,
    decode_tags,
    encode_request,
)

__all__ = ["OllamaProvider"]

log = logging.getLogger("meterline.providers")


class OllamaProvider:
    """An Ollama server. ``base_url`` is the server root (``/v1`` of its OpenAI-compatible API is
    dropped if given); a key, if configured, is sent as a bearer token (for a proxy in front)."""

    wire = "ollama"
    default_base_url = "http://127.0.0.1:11434"

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        self.name = settings.name
        self.settings = settings
        self.deps = deps
        base = (settings.base_url or self.default_base_url).rstrip("/")
        self.base_url = base.removesuffix("/v1")
        key = deps.api_key(settings)
        self.headers = {"content-type": "application/json", **settings.headers}
        if key:
            self.headers["authorization"] = f"Bearer {key}"
        self.http = deps.http(settings, decode_error)
        self._tags: list[str] | None = None

    def _call(self, request: ChatRequest, stream: bool) -> UpstreamCall:
        body = encode_request(request)
        body["stream"] = stream  # Ollama streams unless told otherwise
        return UpstreamCall("POST", f"{self.base_url}/api/chat", self.headers, orjson.dumps(body))

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raw = await self.http.send(self._call(request, stream=False))
        return decode_response(self.http.json(raw))

    async def stream(self, request: ChatRequest) -> ChunkStream:
        decoder = StreamDecoder(self.name)
        async with aclosing(self.http.stream(self._call(request, stream=True))) as body:
            async for data in body:
                if chunks := decoder.feed(data):
                    yield chunks
        if chunks := decoder.close():
            yield chunks

    async def list_models(self) -> list[str]:
        """Configured models, then the server's (from ``/api/tags``, asked until it answers)."""
        configured = [m.name for m in self.settings.models]
        try:
            pulled = await self.tags()
        except ProviderError as exc:
            log.warning("could not list the models of %s: %s", self.name, exc.message)
            pulled = []
        return list(dict.fromkeys(configured + pulled))

    async def tags(self) -> list[str]:
        """The models pulled on the server, from ``GET /api/tags``; cached after a success."""
        if self._tags is None:
            call = UpstreamCall("GET", f"{self.base_url}/api/tags", self.headers)
            self._tags = decode_tags(self.http.json(await self.http.send(call)))
        return self._tags

    async def aclose(self) -> None:
        """The shared connection pool belongs to the app; nothing of our own to close."""
