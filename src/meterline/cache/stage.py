"""Cache stage: answer from the response cache, share in-flight calls, store fresh answers.

* Cached: requests with temperature 0 or unset (or any, with ``cache_sampled``), for ``ttl``
  seconds. Precedence: ``x-meterline-cache-ttl`` > the key's ``cache_ttl`` >
  ``cache.ttl_by_model`` > ``cache.ttl``; a key with ``cache_ttl: 0`` skips the cache.
* Every answer is also kept for ``dedupe_window`` seconds, so an editor that sends the same
  request twice gets the first answer even when sampling is on.
* Identical requests in flight at the same moment share one upstream call.
* ``x-meterline-skip-cache: true`` bypasses all of it. Errors are never stored.
* Skipped: requests asking for what a cached answer does not keep — log probabilities, audio,
  web search — and requests holding content only their own wire format carries (a document, a
  server tool: ``ChatRequest.opaque``), whose answers may hold citations or tool results.
Hits cost nothing and are logged with ``cache_hit``; ``x-meterline-cache`` says hit, miss or skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson

from meterline.cache.backends import CacheBackend
from meterline.cache.keys import cache_key
from meterline.pipeline.assemble import replay
from meterline.pipeline.context import Outcome, RequestContext
from meterline.pipeline.pipeline import Reply
from meterline.settings import CacheSettings
from meterline.types import ChatRequest, ChatResponse
from meterline.wire.openai_response import decode_response, encode_response

__all__ = ["CacheStage"]

log = logging.getLogger("meterline.cache")

_DEDUPE = "dedupe:"


def _ttl_header(ctx: RequestContext) -> float | None:
    raw = ctx.headers.get("x-meterline-cache-ttl")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


# Request fields asking for parts of an answer that a cached answer does not keep.
_UNKEPT = ("logprobs", "top_logprobs", "audio", "modalities", "web_search_options")


def _unkept(request: ChatRequest) -> bool:
    """Opaque content (which includes ``n`` > 1), or a field in ``_UNKEPT`` asked for."""
    return request.opaque is not None or any(request.extra.get(f) for f in _UNKEPT)


def _key_skips(ctx: RequestContext) -> bool:
    """A key with ``cache_ttl: 0`` neither reads nor writes the cache (a TTL header wins)."""
    key = ctx.key
    if key is None or key.spec.options.cache_ttl != 0:
        return False
    return "x-meterline-cache-ttl" not in ctx.headers


class CacheStage:
    def __init__(self, backend: CacheBackend, settings: CacheSettings) -> None:
        self.backend = backend
        self.settings = settings
        self._inflight: dict[str, asyncio.Future[ChatResponse | None]] = {}
        self.hits = 0
        self.misses = 0

    def _ttl(self, ctx: RequestContext) -> float:
        """Seconds to cache this request's answer (0: only the de-duplication window)."""
        temperature = ctx.request.temperature
        if temperature not in (None, 0.0) and not self.settings.cache_sampled:
            return 0.0
        header = _ttl_header(ctx)
        if header is not None:
            return header
        key_ttl = ctx.key.spec.options.cache_ttl if ctx.key is not None else None
        if key_ttl is not None:
            return key_ttl
        return self.settings.ttl_by_model.get(ctx.model_requested, self.settings.ttl)

    async def __call__(self, ctx: RequestContext) -> Reply | None:
        skip = ctx.headers.get("x-meterline-skip-cache", "").lower() in ("1", "true", "yes")
        if (not self.settings.enabled or skip or ctx.route is None or _key_skips(ctx)
                or _unkept(ctx.request)):  # fmt: skip
            ctx.response_headers["x-meterline-cache"] = "skip"
            return None
        ttl = self._ttl(ctx)
        key = cache_key(ctx.principal.tenant, ctx.route.provider, ctx.route.model.name, ctx.request)
        found = await self._lookup(key, ttl)
        if found is None:
            found = await self._join(key)
        if found is not None:
            return self._hit(ctx, found)
        self.misses += 1
        ctx.response_headers["x-meterline-cache"] = "miss"
        self._inflight[key] = asyncio.get_running_loop().create_future()
        ctx.on_complete(lambda c, o: self._store(c, o, key, ttl))
        return None

    async def _lookup(self, key: str, ttl: float) -> ChatResponse | None:
        raw = await self.backend.get(key) if ttl > 0 else None
        if raw is None:
            raw = await self.backend.get(_DEDUPE + key)
        return decode_response(orjson.loads(raw)) if raw is not None else None

    async def _join(self, key: str) -> ChatResponse | None:
        """Wait for an identical request already on its way upstream, if there is one."""
        leader = self._inflight.get(key)
        if leader is None:
            return None
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(600):
                return await asyncio.shield(leader)
        return None

    def _hit(self, ctx: RequestContext, response: ChatResponse) -> Reply:
        self.hits += 1
        ctx.cache_hit = True
        ctx.response_headers["x-meterline-cache"] = "hit"
        return replay(response) if ctx.request.stream else response

    def _store(self, ctx: RequestContext, outcome: Outcome, key: str, ttl: float) -> None:
        leader = self._inflight.pop(key, None)
        answer = ctx.answer if outcome.status == "ok" else None
        if leader is not None and not leader.done():
            leader.set_result(answer)
        if answer is None or answer.finish_reason == "error":
            return
        raw = orjson.dumps(encode_response(answer))
        task = asyncio.get_running_loop().create_task(self._write(key, raw, ttl))
        task.add_done_callback(_log_failure)

    async def _write(self, key: str, raw: bytes, ttl: float) -> None:
        await self.backend.set(_DEDUPE + key, raw, self.settings.dedupe_window)
        if ttl > 0:
            await self.backend.set(key, raw, ttl)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("storing a cache entry failed: %s", task.exception())
