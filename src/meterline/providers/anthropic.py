"""Anthropic Messages upstream (``POST /v1/messages``, ``x-api-key`` auth, SSE event streams).

The translation lives in :mod:`meterline.wire.anthropic_request` and
:mod:`meterline.wire.anthropic_response`; this module only does the I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import orjson

from meterline.errors import UpstreamConnectionError, UpstreamUnavailable
from meterline.providers.base import ProviderDeps
from meterline.providers.http import UpstreamCall
from meterline.settings import ProviderSettings, RetrySettings
from meterline.types import ChatChunk, ChatRequest, ChatResponse, ChunkStream, Relayed
from meterline.wire.anthropic_cache import add_cache_breakpoints
from meterline.wire.anthropic_request import encode_request
from meterline.wire.anthropic_response import (
    StreamDecoder,
    decode_error,
    decode_response,
    frame,
)
from meterline.wire.sse import SSEEvent

__all__ = ["ANTHROPIC_EXTRA_FIELDS", "AnthropicProvider", "anthropic_extra"]

ANTHROPIC_EXTRA_FIELDS = frozenset(
    {
        "top_k", "thinking", "container", "mcp_servers", "context_management", "output_config",
        "output_format", "inference_geo", "cache_control",
    }
)  # fmt: skip
"""Anthropic's own top-level request fields that :class:`ChatRequest` keeps in ``extra``."""

_SERVICE_TIERS = frozenset({"auto", "standard_only"})
_SAMPLING = ("temperature", "top_p", "top_k")
_SAMPLING_REMOVED = "2026-10-21"  # the API version that no longer takes _SAMPLING


def anthropic_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``extra`` that Anthropic accepts; everything else is dropped.

    A :class:`ChatRequest` does not say which wire format it arrived in, and another format's
    fields (OpenAI's ``logit_bias``, ``seed``…) would make Anthropic answer 400, so fields are
    kept by name. ``service_tier`` exists in both formats with different values; it is kept
    only with a value Anthropic knows.
    """
    kept = {name: value for name, value in extra.items() if name in ANTHROPIC_EXTRA_FIELDS}
    tier = extra.get("service_tier")
    if isinstance(tier, str) and tier in _SERVICE_TIERS:
        kept["service_tier"] = tier
    return kept


def _retry_overloaded(retry: RetrySettings) -> RetrySettings:
    """Anthropic answers 529 when overloaded where others answer 503: retry it the same way."""
    codes = retry.retry_on_status
    if 503 in codes and 529 not in codes:
        return replace(retry, retry_on_status=(*codes, 529))
    return retry


def _base_url(settings: ProviderSettings, env: Mapping[str, str], default: str) -> str:
    """The API root without ``/v1`` (the SDK convention for ``ANTHROPIC_BASE_URL``); a
    configured URL that ends in ``/v1`` is accepted too."""
    base = (settings.base_url or env.get("ANTHROPIC_BASE_URL") or default).rstrip("/")
    return base.removesuffix("/v1")


def _payload(event: SSEEvent, provider: str) -> dict[str, Any]:
    try:
        payload = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise UpstreamUnavailable(
            f"{provider} sent a malformed {event.event or 'stream'} event", provider=provider
        ) from None
    return payload if isinstance(payload, dict) else {}


class AnthropicProvider:
    """Anthropic's Messages API, or anything that speaks it (a proxy, a simulator).

    Only Anthropic's own top-level fields are taken from ``extra`` (see :func:`anthropic_extra`)
    and tools lose OpenAI's ``strict``, which older Claude models reject. ``settings.headers``
    (e.g. ``anthropic-beta``) are sent with every call; one that sets ``anthropic-version`` to
    2026-10-21 or later also drops ``temperature``/``top_p``/``top_k``, which those versions
    refuse.

    A request from an Anthropic-format client (Claude Code, the ``anthropic`` SDK) is relayed
    (``ChatRequest.wire``): every top-level field, content block and tool it sent goes on as
    sent, with its ``anthropic-beta`` header added to the configured one, and the answer comes
    back as the upstream wrote it — server tool blocks, citations, ``pause_turn`` and all —
    with the routed model's name in ``model``.
    """

    wire = "anthropic"
    default_base_url = "https://api.anthropic.com"
    api_version = "2023-06-01"

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        self.name = settings.name
        self.settings = settings
        self.deps = deps
        self.base_url = _base_url(settings, deps.env, self.default_base_url)
        key = deps.api_key(settings)
        self.headers = {
            "content-type": "application/json",
            "anthropic-version": self.api_version,
            **{name.lower(): value for name, value in settings.headers.items()},
        }
        if key:
            self.headers["x-api-key"] = key
        self.http = deps.http(
            settings, decode_error, _retry_overloaded(settings.retry or deps.retry)
        )
        self._discovered: list[str] | None = None

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The ``/v1/messages`` body for ``request``."""
        if request.wire == self.wire:
            body = encode_request(request)
        else:
            body = encode_request(request, passthrough=False)
            body.update(anthropic_extra(request.extra))
        if self.settings.auto_cache:
            body = add_cache_breakpoints(body)
        if self.headers["anthropic-version"] >= _SAMPLING_REMOVED:
            for name in _SAMPLING:  # these would be rejected, even at their default values
                body.pop(name, None)
        return body

    def _headers(self, request: ChatRequest) -> dict[str, str]:
        """The configured headers, with the client's ``anthropic-beta`` features added."""
        beta = request.wire_headers.get("anthropic-beta") if request.wire == self.wire else None
        return self._with_beta(beta)

    def _with_beta(self, beta: str | None) -> dict[str, str]:
        if not beta:
            return self.headers
        configured = self.headers.get("anthropic-beta")
        return {**self.headers, "anthropic-beta": f"{configured},{beta}" if configured else beta}

    def _call(self, request: ChatRequest) -> UpstreamCall:
        payload = orjson.dumps(self.body(request))
        url = f"{self.base_url}/v1/messages"
        return UpstreamCall("POST", url, self._headers(request), payload)

    async def count_tokens(self, body: dict[str, Any], beta: str | None) -> Any:
        """Anthropic's own count for a ``/v1/messages/count_tokens`` body an Anthropic client
        sent (documents, tools and images included), as the upstream answers it."""
        call = UpstreamCall("POST", f"{self.base_url}/v1/messages/count_tokens",
                            self._with_beta(beta), orjson.dumps(body))  # fmt: skip
        return self.http.json(await self.http.send(call))

    async def complete(self, request: ChatRequest) -> ChatResponse:
        body = self.http.json(await self.http.send(self._call(request)))
        relayed = isinstance(body, dict) and request.wire == self.wire
        return decode_response(body, Relayed(self.wire, body) if relayed else None)

    async def stream(self, request: ChatRequest) -> ChunkStream:
        decoder = StreamDecoder(self.name)
        stopped = False
        shown = request.model

        def feed(event: SSEEvent, payload: dict[str, Any]) -> list[ChatChunk]:
            nonlocal stopped
            stopped = stopped or (payload.get("type") or event.event) == "message_stop"
            return decoder.feed(event.event, payload)

        def decode(event: SSEEvent) -> list[ChatChunk]:
            return feed(event, _payload(event, self.name))

        def relay(event: SSEEvent) -> tuple[list[ChatChunk], bytes]:
            """The event's chunks, and the event as the client gets it."""
            payload = _payload(event, self.name)
            chunks = feed(event, payload)
            kind = payload.get("type") or event.event
            message = payload.get("message") if kind == "message_start" else None
            if isinstance(message, dict) and message.get("model", shown) != shown:
                payload["message"] = {**message, "model": shown}  # the model routed to
                return chunks, frame(event.event or "message_start", payload)
            name = b"event: " + event.event.encode() + b"\n" if event.event else b""
            return chunks, name + b"data: " + event.data.encode() + b"\n\n"

        call = self._call(request)
        reads = self.http.relayed(call, relay) if request.wire == self.wire else None
        async with aclosing(reads or self.http.decoded(call, decode)) as batches:
            async for chunks in batches:
                yield chunks
        if not stopped:
            raise UpstreamConnectionError(
                f"{self.name} ended the stream before message_stop", provider=self.name
            )

    async def list_models(self) -> list[str]:
        configured = [m.name for m in self.settings.models]
        known = [m.name for m in self.deps.catalog.for_provider(self.name)]
        return list(dict.fromkeys(configured + known))

    async def discover(self) -> list[str]:
        """Ask the upstream's ``GET /v1/models`` (once) for what it serves."""
        if self._discovered is None:
            url = f"{self.base_url}/v1/models?limit=1000"
            body = orjson.loads(await self.http.send(UpstreamCall("GET", url, self.headers)))
            self._discovered = [str(m["id"]) for m in body.get("data", []) if "id" in m]
        return self._discovered

    async def aclose(self) -> None:
        """The shared connection pool belongs to the app; nothing of our own to close."""
