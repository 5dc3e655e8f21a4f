"""Google Gemini upstream (``generateContent``, ``x-goog-api-key`` auth, ``alt=sse`` streams)."""

from __future__ import annotations

import orjson

from meterline.providers.base import ProviderDeps
from meterline.providers.http import UpstreamCall
from meterline.settings import ProviderSettings
from meterline.types import ChatRequest, ChatResponse, ChunkStream
from meterline.wire.gemini import (
    StreamDecoder,
    decode_error,
    decode_models,
    decode_response,
    encode_request,
    model_path,
)

__all__ = ["GeminiProvider"]

# Google's documented placeholder for function-call history without its thought signatures,
# which Gemini 3 models otherwise refuse (the gateway does not keep signatures).
_SKIP_SIGNATURE = "skip_thought_signature_validator"


class GeminiProvider:
    """The Gemini API at ``generativelanguage.googleapis.com`` (or a proxy of it).

    ``base_url`` is the host without the API version (``/v1beta`` is added per call; a base URL
    given with it is accepted too). The key goes in the ``x-goog-api-key`` header.
    """

    wire = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        self.name = settings.name
        self.settings = settings
        self.deps = deps
        base = (settings.base_url or self.default_base_url).rstrip("/")
        self.base_url = base.removesuffix("/v1beta")
        key = deps.api_key(settings)
        self.headers = {"content-type": "application/json", **settings.headers}
        if key:
            self.headers["x-goog-api-key"] = key
        self.http = deps.http(settings, decode_error)
        self._discovered: list[str] | None = None

    def _call(self, request: ChatRequest, stream: bool) -> UpstreamCall:
        signature = _SKIP_SIGNATURE if request.model.startswith("gemini-3") else None
        body = encode_request(request, thought_signature=signature)
        url = f"{self.base_url}{model_path(request.model, stream)}"
        return UpstreamCall("POST", url, self.headers, orjson.dumps(body))

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raw = await self.http.send(self._call(request, stream=False))
        return decode_response(self.http.json(raw))

    def stream(self, request: ChatRequest) -> ChunkStream:
        decoder = StreamDecoder(self.name)
        call = self._call(request, stream=True)
        return self.http.decoded(call, lambda event: decoder.feed(self.http.json(event.data)))

    async def list_models(self) -> list[str]:
        configured = [m.name for m in self.settings.models]
        known = [m.name for m in self.deps.catalog.for_provider(self.name)]
        return list(dict.fromkeys(configured + known))

    async def discover(self) -> list[str]:
        """Ask the upstream's ``GET /v1beta/models`` (once) for the models that generate."""
        if self._discovered is None:
            url = f"{self.base_url}/v1beta/models?pageSize=1000"
            raw = await self.http.send(UpstreamCall("GET", url, self.headers))
            self._discovered = decode_models(self.http.json(raw))
        return self._discovered

    async def aclose(self) -> None:
        """The shared connection pool belongs to the app; nothing of our own to close."""
