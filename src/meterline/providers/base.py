"""The provider interface: what every upstream adapter implements.

A provider receives a :class:`ChatRequest` whose ``model`` is already the upstream's model name,
and answers with a :class:`ChatResponse` or a :data:`~meterline.types.ChunkStream`. Errors are
raised as :class:`~meterline.errors.ProviderError` subclasses. Retries and timeouts are the
provider's own business (see :mod:`meterline.providers.http`); fallback across providers is not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from meterline.catalog import Catalog
from meterline.providers.http import ErrorDecoder, HttpClient
from meterline.providers.upstream import UpstreamPool
from meterline.settings import ProviderSettings, RetrySettings, TimeoutSettings
from meterline.types import ChatRequest, ChatResponse, ChunkStream

__all__ = ["Provider", "ProviderDeps", "ProviderFactory"]


class Provider(Protocol):
    name: str
    wire: str
    """The wire format the upstream speaks (``"openai"``, ``"anthropic"``, ``"gemini"``…). A
    request that arrived in the same format is relayed: what the client sent that the internal
    types do not model goes on, and the upstream's answer comes back as it was
    (``ChatRequest.wire``)."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request`` in one piece."""
        ...

    def stream(self, request: ChatRequest) -> ChunkStream:
        """Answer ``request`` as a stream, the chunks of each upstream read in one list (never
        an empty one); closing the iterator cancels the upstream call."""
        ...

    async def list_models(self) -> list[str]:
        """The upstream model names this provider serves (may ask the upstream)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ProviderDeps:
    """What the app hands every provider factory: shared resources and defaults."""

    pool: UpstreamPool
    catalog: Catalog
    retry: RetrySettings = field(default_factory=RetrySettings)
    timeout: TimeoutSettings = field(default_factory=TimeoutSettings)
    env: Mapping[str, str] = field(default_factory=dict)

    def api_key(self, settings: ProviderSettings) -> str | None:
        """The provider's key: from the config, else from the variable ``api_key_env`` names."""
        return settings.api_key or (self.env.get(settings.api_key_env or "") or None)

    def http(
        self,
        settings: ProviderSettings,
        decode_error: ErrorDecoder,
        retry: RetrySettings | None = None,
    ) -> HttpClient:
        """The provider's HTTP client: its own retry and timeout settings, else the defaults."""
        return HttpClient(
            self.pool,
            settings.name,
            retry or settings.retry or self.retry,
            settings.timeout or self.timeout,
            decode_error,
        )


ProviderFactory = Callable[[ProviderSettings, ProviderDeps], Provider]
