"""Rate-limit stage: requests and tokens per minute, per key, team and tenant.

Fixed one-minute windows: within a window the count never passes the limit (the check and the
increment are one atomic counter operation). Tokens are counted after each request and a window
that has reached its token limit refuses further requests until it ends.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from meterline.accounting.counters import Counters, MemoryCounters
from meterline.errors import RateLimited
from meterline.pipeline.context import Outcome, RequestContext
from meterline.settings import AccountingSettings

__all__ = ["RateLimitStage"]

_WINDOW = 60


@dataclass(frozen=True, slots=True)
class _Limit:
    scope: str
    subject: str
    rpm: int | None
    tpm: int | None


class RateLimitStage:
    def __init__(self, counters: Counters, settings: AccountingSettings) -> None:
        self.counters = counters
        self.settings = settings
        self._pending: set[asyncio.Task[int]] = set()

    def _limits(self, ctx: RequestContext) -> list[_Limit]:
        found = []
        p = ctx.principal
        tenant = self.settings.tenants.get(p.tenant)
        if tenant is not None:
            found.append(_Limit("tenant", p.tenant, tenant.rpm, tenant.tpm))
        team = self.settings.teams.get(p.team) if p.team else None
        if team is not None and p.team:
            found.append(_Limit("team", p.team, team.rpm, team.tpm))
        if ctx.key is not None:
            rpm = (
                ctx.key.spec.rpm if ctx.key.spec.rpm is not None else self.settings.default_key_rpm
            )
            found.append(_Limit("key", ctx.key.id, rpm, ctx.key.spec.tpm))
        return found

    async def __call__(self, ctx: RequestContext) -> None:
        limits = self._limits(ctx)
        if not limits:
            return None
        now = time.time()
        minute = int(now // _WINDOW)
        reset = _WINDOW - (now % _WINDOW)
        for limit in limits:
            base = f"{limit.scope}:{limit.subject}:{minute}"
            if limit.tpm is not None:
                used = await self.counters.get(f"tpm:{base}")
                self._headers(ctx, limit, "tokens", limit.tpm, limit.tpm - used, reset)
                if used >= limit.tpm:
                    raise self._refuse(limit, "tokens", limit.tpm, reset)
            if limit.rpm is not None:
                hit = await self.counters.hit(f"rpm:{base}", limit.rpm, 1, _WINDOW * 2)
                self._headers(ctx, limit, "requests", limit.rpm, limit.rpm - hit.count, reset)
                if not hit.allowed:
                    raise self._refuse(limit, "requests", limit.rpm, reset)
        token_limits = [f"tpm:{lim.scope}:{lim.subject}:{minute}" for lim in limits if lim.tpm]
        if token_limits:
            ctx.on_complete(lambda c, o: self._count_tokens(token_limits, o))
        return None

    def _count_tokens(self, keys: list[str], outcome: Outcome) -> None:
        tokens = outcome.usage.total_tokens
        if isinstance(self.counters, MemoryCounters):  # in process: no task needed
            for key in keys:
                self.counters.add_now(key, tokens, _WINDOW * 2)
            return
        loop = asyncio.get_running_loop()
        for key in keys:
            task = loop.create_task(self.counters.add(key, tokens, _WINDOW * 2))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _headers(self, ctx: RequestContext, limit: _Limit, unit: str, cap: int, left: int,
                 reset: float) -> None:  # fmt: skip
        if limit.scope != "key" and f"x-ratelimit-limit-{unit}" in ctx.response_headers:
            return
        ctx.response_headers[f"x-ratelimit-limit-{unit}"] = str(cap)
        ctx.response_headers[f"x-ratelimit-remaining-{unit}"] = str(max(0, left))
        ctx.response_headers[f"x-ratelimit-reset-{unit}"] = f"{math.ceil(reset)}s"

    def _refuse(self, limit: _Limit, unit: str, cap: int, reset: float) -> RateLimited:
        seconds = max(1, math.ceil(reset))
        error = RateLimited(
            f"rate limit reached for {limit.scope} '{limit.subject}': {cap} {unit} per minute; "
            f"try again in {seconds}s"
        )
        error.headers["retry-after"] = str(seconds)
        return error
