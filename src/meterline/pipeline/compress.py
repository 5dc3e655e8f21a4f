"""Compress stage: shrink the prompt before it is priced and sent (fail-open per stage).

Runs after the cache lookup (cache keys are over the request as the client sent it) and before
the budget (which then reserves on the smaller prompt). Tokens before and after, and the savings
of each stage, go on the log row; ``x-meterline-tokens-saved`` tells the client.

Precedence: ``x-meterline-compress: off`` > the key's ``compression`` switches > the config.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from meterline.compress import CompressionSettings, compress
from meterline.pipeline.context import RequestContext
from meterline.settings import CompressionConfig
from meterline.types import TextPart

__all__ = ["CompressStage"]

log = logging.getLogger("meterline.compress")


def _client_caches(ctx: RequestContext) -> bool:
    """A request with its own prompt-cache breakpoints (Claude Code sends them) is left alone:
    rewriting its prefix would turn the provider's cheap cache reads into full-price input."""
    request = ctx.request
    return any(t.cache_control for t in request.tools) or any(
        isinstance(p, TextPart) and p.cache_control for m in request.messages for p in m.parts
    )


class CompressStage:
    def __init__(self, config: CompressionConfig) -> None:
        self.config = config
        # The config merged with each distinct key override (by its ident), built on first
        # use: as small as the set of different overrides, and nothing is merged per request.
        self._by_override: dict[int, CompressionConfig] = {}

    def _config(self, ctx: RequestContext) -> CompressionConfig:
        key = ctx.key
        override = key.spec.options.compression if key is not None else None
        if override is None:
            return self.config
        merged = self._by_override.get(override.ident)
        if merged is None:
            merged = replace(self.config, **override.changes())
            self._by_override[override.ident] = merged
        return merged

    def _settings(self, ctx: RequestContext, c: CompressionConfig) -> CompressionSettings:
        model = ctx.route.model.name if ctx.route else ctx.request.model
        return CompressionSettings(normalize=c.normalize, dedup=c.dedup, symbols=c.symbols,
                                   code=c.code, trim=c.trim, trim_threshold=c.trim_threshold,
                                   model=model)  # fmt: skip

    async def __call__(self, ctx: RequestContext) -> None:
        if ctx.headers.get("x-meterline-compress", "on").lower() in ("off", "false", "0"):
            return None
        config = self._config(ctx)
        if not config.enabled:
            return None
        size = sum(len(p.text) for m in ctx.request.messages for p in m.parts
                   if isinstance(p, TextPart))  # fmt: skip
        if size < config.min_chars or _client_caches(ctx):
            return None
        try:
            smaller, report = compress(ctx.request, self._settings(ctx, config))
        except Exception:  # noqa: BLE001 - fail open: the original prompt goes out
            log.exception("compressing request %s failed; sending it as it came", ctx.request_id)
            return None
        ctx.tokens_before = report.tokens_before
        ctx.tokens_after = report.tokens_after
        ctx.compression = {s.name: s.tokens_saved for s in report.stages if not s.skipped}
        if report.tokens_saved > 0:
            ctx.request = smaller
        ctx.response_headers["x-meterline-tokens-saved"] = str(max(0, report.tokens_saved))
        return None
