"""Background LLM classification (optional, off by default).

After an answer has been sent, a cheap model — called through the gateway's own providers —
classifies the task from the first 500 characters of the request and of the answer, and the
log row's task type, complexity, language, stack and domain are overwritten with its verdict.
Best-effort: a failure is logged and ignored. The instructions are marked for provider prompt
caching. Its calls are logged as the gateway's own spend (tenant ``meterline``) and it only runs
while its spend stays within ``max_share`` of the spend of the traffic it classifies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.errors import GatewayError
from meterline.pipeline.context import Outcome, RequestContext, Route
from meterline.pipeline.log import row_for
from meterline.routing.classifier import TaskType
from meterline.settings import LLMClassifierSettings
from meterline.store import LogWriter
from meterline.store.schema import requests
from meterline.types import ChatRequest, Message, Principal, ResponseFormat, TextPart, Usage

if TYPE_CHECKING:
    from meterline.pipeline.route import Resolver
    from meterline.providers import ProviderRegistry

__all__ = ["LLMClassifier", "parse_verdict"]

log = logging.getLogger("meterline.routing")

INSTRUCTIONS = (
    "Classify the coding-assistant task below. Answer with one JSON object only: "
    '{"task_type": one of "simple_qa", "code_gen", "code_review", "debug", "refactor", '
    '"explain", "other"; "complexity": an integer 0-100; "language": the programming language '
    'or null; "stack": the framework or tool or null; "domain": e.g. "web", "data", "infra", '
    '"ml", "mobile", "security", or null}.'
)
_TASKS: tuple[TaskType, ...] = ("simple_qa", "code_gen", "code_review", "debug", "refactor",
                                "explain", "other")  # fmt: skip
_GATEWAY = Principal(tenant="meterline", key_id="llm-classifier")


def _short(value: Any, limit: int = 32) -> str | None:
    return value[:limit].lower() if isinstance(value, str) and value.strip() else None


def parse_verdict(text: str) -> dict[str, Any] | None:
    """The model's JSON verdict, validated; ``None`` if it is not usable."""
    start, end = text.find("{"), text.rfind("}")
    try:
        raw = orjson.loads(text[start : end + 1]) if start != -1 else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or raw.get("task_type") not in _TASKS:
        return None
    complexity = raw.get("complexity")
    if not isinstance(complexity, int) or isinstance(complexity, bool):
        return None
    return {"task_type": raw["task_type"], "complexity": max(0, min(100, complexity)),
            "language": _short(raw.get("language")), "stack": _short(raw.get("stack"), 64),
            "domain": _short(raw.get("domain"))}  # fmt: skip


class LLMClassifier:
    """A pipeline stage that only registers :meth:`observe` for when the request ends."""

    def __init__(
        self,
        settings: LLMClassifierSettings,
        resolver: Resolver,
        providers: ProviderRegistry,
        engine: AsyncEngine,
        writer: LogWriter,
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self.providers = providers
        self.engine = engine
        self.writer = writer
        self.traffic_spend = 0
        self.own_spend = 0
        self.classified = 0
        self._pending: set[asyncio.Task[None]] = set()

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.on_complete(self.observe)
        return None

    def observe(self, ctx: RequestContext, outcome: Outcome) -> None:
        """A completion callback: count the traffic's spend, classify when the share allows."""
        if ctx.principal.tenant == _GATEWAY.tenant or outcome.status != "ok" or ctx.cache_hit:
            return
        self.traffic_spend += outcome.cost
        if not self.settings.enabled or ctx.answer is None:
            return
        if self.own_spend > self.settings.max_share * self.traffic_spend:
            return
        task = asyncio.get_running_loop().create_task(self._classify(ctx))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _request(self, ctx: RequestContext, model: str) -> ChatRequest:
        asked = "\n".join(m.text for m in ctx.request.messages if m.role == "user")[:500]
        answered = ctx.answer.message.text[:500] if ctx.answer else ""
        system = Message("system", (TextPart(INSTRUCTIONS, {"type": "ephemeral"}),))
        user = Message("user", (TextPart(f"REQUEST:\n{asked}\n\nANSWER:\n{answered}"),))
        return ChatRequest(model, (system, user), max_tokens=120, temperature=0.0,
                           response_format=ResponseFormat("json_object"))  # fmt: skip

    async def _classify(self, ctx: RequestContext) -> None:
        try:
            route = self.resolver.resolve(self.settings.model)
            provider = self.providers.get(route.provider)
            if provider is None:
                return
            started = time.perf_counter()
            request = self._request(ctx, route.model.name)
            response = await provider.complete(request)
            reason = f"background classification of {ctx.request_id}"
            self._log_own_spend(ctx, request, Route(route.provider, route.model, reason),
                                response.usage, started)  # fmt: skip
            verdict = parse_verdict(response.message.text)
            if verdict is None:
                log.info("the LLM classifier gave no usable verdict for %s", ctx.request_id)
                return
            await self.writer.flush()  # the row being backfilled may still be queued
            async with self.engine.begin() as conn:
                await conn.execute(update(requests).where(requests.c.id == ctx.request_id)
                                   .values(**verdict))  # fmt: skip
            self.classified += 1
        except GatewayError as exc:
            log.warning("background classification of %s failed: %s", ctx.request_id, exc.message)

    def _log_own_spend(self, ctx: RequestContext, request: ChatRequest, route: Route,
                       usage: Usage, started: float) -> None:  # fmt: skip
        own = RequestContext(request, "internal", principal=_GATEWAY, route=route,
                             metadata={"purpose": "classification", "for": ctx.request_id},
                             started=started)  # fmt: skip
        own.complete("ok", usage, finish_reason="stop")
        assert own.outcome is not None
        self.own_spend += own.outcome.cost
        self.writer.submit(row_for(own, own.outcome))

    async def drain(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
