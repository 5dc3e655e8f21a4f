"""Any OpenAI-compatible endpoint: groq, together, vLLM, LM Studio, llama.cpp, OpenRouter…"""

from __future__ import annotations

from meterline.errors import ProviderError
from meterline.providers.openai import OpenAIProvider

__all__ = ["CompatibleProvider"]


class CompatibleProvider(OpenAIProvider):
    """Speaks the OpenAI wire format; sends ``max_tokens``, which these servers all accept.

    Models come from the config; with none configured, from the upstream's ``GET /models``.
    """

    max_tokens_field = "max_tokens"

    async def list_models(self) -> list[str]:
        configured = [m.name for m in self.settings.models]
        if configured:
            return configured
        try:
            return await self.discover()
        except ProviderError:
            return []
