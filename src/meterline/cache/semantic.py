"""Semantic cache stage (opt-in): a question close enough in meaning to one already answered in
the same context gets that answer, free.

Runs right after the exact cache, and only where it missed (so ``x-meterline-skip-cache``, a
disabled cache and routes without a cache skip this too). A request is looked up only when:

* its tenant and requested model have the semantic cache on (``cache.semantic``);
* its last message is a user question of plain text, at most ``max_chars`` long;
* it does not sample (temperature unset or 0), unless ``cache.cache_sampled`` is on.

Only requests identical in everything but that last question are compared (see
:func:`~meterline.cache.keys.context_key`): the same tenant, model, system prompt, earlier turns,
tools and parameters. Vectors stay in this process (:class:`VectorIndex`); the answers go to the
cache backend, so with Redis each replica matches the questions it has seen itself. Errors are
never stored. A hit says ``x-meterline-cache: hit`` and
``x-meterline-cache-match: semantic; similarity=0.981``, costs nothing and is logged with
``cache_hit``, ``cache_match = 'semantic'`` and ``cache_similarity``; it also fills the exact
cache for the new wording, as any answer does.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from meterline.cache.backends import CacheBackend
from meterline.cache.embedder import Embedder, EmbedderBusy, Vector
from meterline.cache.keys import cache_key, context_key
from meterline.cache.vectors import Match, VectorIndex
from meterline.pipeline.assemble import replay
from meterline.pipeline.context import Outcome, RequestContext
from meterline.pipeline.pipeline import Reply
from meterline.settings import CacheSettings
from meterline.types import ChatResponse, TextPart
from meterline.wire.openai_response import decode_response, encode_response

__all__ = ["SemanticCache"]

log = logging.getLogger("meterline.cache")

_PREFIX = "semantic:"


class SemanticCache:
    def __init__(self, backend: CacheBackend, embedder: Embedder, settings: CacheSettings) -> None:
        self.backend = backend
        self.embedder = embedder
        self.settings = settings
        self.index = VectorIndex(settings.semantic.max_entries)
        self.hits = 0
        self.misses = 0

    def threshold(self, ctx: RequestContext) -> float | None:
        """The similarity this request needs for a hit; None where the semantic cache is off."""
        semantic = self.settings.semantic
        route = semantic.by_model.get(ctx.model_requested)
        enabled = semantic.enabled if route is None or route.enabled is None else route.enabled
        if not enabled or (semantic.tenants and ctx.principal.tenant not in semantic.tenants):
            return None
        return semantic.threshold if route is None or route.threshold is None else route.threshold

    def question(self, ctx: RequestContext) -> str | None:
        """The last user message, if this request may be answered by meaning at all."""
        request = ctx.request
        if request.temperature not in (None, 0.0) and not self.settings.cache_sampled:
            return None
        last = request.messages[-1] if request.messages else None
        if last is None or last.role != "user":
            return None
        if not all(isinstance(p, TextPart) for p in last.parts):
            return None
        text = last.text.strip()
        return text if 0 < len(text) <= self.settings.semantic.max_chars else None

    def _ttl(self, ctx: RequestContext) -> float:
        """As the exact cache: the TTL header, then the key's ``cache_ttl``, then the config."""
        raw = ctx.headers.get("x-meterline-cache-ttl")
        try:
            if raw is not None:
                return max(0.0, float(raw))
        except ValueError:
            pass
        key_ttl = ctx.key.spec.options.cache_ttl if ctx.key is not None else None
        if key_ttl is not None:
            return key_ttl
        return self.settings.ttl_by_model.get(ctx.model_requested, self.settings.ttl)

    async def __call__(self, ctx: RequestContext) -> Reply | None:
        route = ctx.route
        if route is None or ctx.response_headers.get("x-meterline-cache") != "miss":
            return None
        threshold = self.threshold(ctx)
        question = self.question(ctx) if threshold is not None else None
        if threshold is None or question is None:
            return None
        try:
            vector = await self.embedder.embed(question)
        except (EmbedderBusy, RuntimeError) as exc:
            log.info("semantic cache lookup skipped: %s", exc)
            return None
        scope = context_key(ctx.principal.tenant, route.provider, route.model.name, ctx.request)
        match = self.index.search(scope, vector, threshold)
        if match is not None:
            raw = await self.backend.get(_PREFIX + match.entry)
            if raw is not None:
                return self._hit(ctx, decode_response(orjson.loads(raw)), match)
            self.index.remove(scope, match.entry)  # the backend evicted or expired the answer
        self.misses += 1
        ttl = self._ttl(ctx)
        if ttl > 0:
            entry = cache_key(ctx.principal.tenant, route.provider, route.model.name, ctx.request)
            ctx.on_complete(lambda c, o: self._store(c, o, (scope, entry), vector, ttl))
        return None

    def _hit(self, ctx: RequestContext, response: ChatResponse, match: Match) -> Reply:
        self.hits += 1
        ctx.cache_hit = True
        ctx.cache_similarity = round(match.similarity, 4)
        ctx.response_headers["x-meterline-cache"] = "hit"
        ctx.response_headers["x-meterline-cache-match"] = (
            f"semantic; similarity={match.similarity:.3f}"
        )
        return replay(response) if ctx.request.stream else response

    def _store(
        self,
        ctx: RequestContext,
        outcome: Outcome,
        where: tuple[str, str],
        vector: Vector,
        ttl: float,
    ) -> None:
        answer = ctx.answer if outcome.status == "ok" else None
        if answer is None or answer.finish_reason == "error" or ctx.cache_hit:
            return
        raw = orjson.dumps(encode_response(answer))
        task = asyncio.get_running_loop().create_task(self._write(where, raw, vector, ttl))
        task.add_done_callback(_log_failure)

    async def _write(self, where: tuple[str, str], raw: bytes, vector: Vector, ttl: float) -> None:
        scope, entry = where
        await self.backend.set(_PREFIX + entry, raw, ttl)
        self.index.add(scope, entry, vector, ttl)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("storing a semantic cache entry failed: %s", task.exception())
