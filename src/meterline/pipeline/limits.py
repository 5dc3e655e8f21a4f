"""Rate-limit stage: requests and tokens per minute, per key, team and tenant.

Fixed one-minute windows: within a window the count never passes the limit (the check and the
increment are one atomic counter operation). Tokens are counted after each request and a window
that has reached its token limit refuses further requests until it ends.
"""

from __future__ import annotations

import asyncio
import math
import time

from meterline.accounting.counters import Counters, ImmediateCounters, Window
from meterline.errors import RateLimited
from meterline.pipeline.context import Outcome, RequestContext
from meterline.settings import AccountingSettings

__all__ = ["RateLimitStage"]

_WINDOW = 60


class _Limit:
    """One caller's limits at one scope, with what each request needs of them made once: the
    counters' window of the current minute (remade when the minute changes) and the header
    texts."""

    __slots__ = ("scope", "subject", "rpm", "tpm", "rpm_text", "tpm_text", "_minute", "_window")

    def __init__(self, scope: str, subject: str, rpm: int | None, tpm: int | None) -> None:
        self.scope, self.subject, self.rpm, self.tpm = scope, subject, rpm, tpm
        self.rpm_text, self.tpm_text = str(rpm), str(tpm)
        self._minute = -1
        self._window = Window("", None, "", None, _WINDOW * 2)

    def window(self, minute: int) -> Window:
        """The token and request counters of the window ``minute``."""
        if minute != self._minute:
            base = f"{self.scope}:{self.subject}:{minute}"
            self._window = Window(f"tpm:{base}", self.tpm, f"rpm:{base}", self.rpm, _WINDOW * 2)
            self._minute = minute
        return self._window


_HEADERS = {
    unit: (f"x-ratelimit-limit-{unit}", f"x-ratelimit-remaining-{unit}",
           f"x-ratelimit-reset-{unit}")
    for unit in ("requests", "tokens")
}  # fmt: skip
_KNOWN = 10_000  # callers whose limits are remembered before the memory is cleared


class RateLimitStage:
    def __init__(self, counters: Counters, settings: AccountingSettings) -> None:
        self.counters = counters
        self.memory = counters if isinstance(counters, ImmediateCounters) else None
        self.settings = settings
        self._pending: set[asyncio.Task[int]] = set()
        # (tenant, team, key id) -> (the key object they were made for, its limits)
        self._known: dict[tuple[str, str | None, str | None], tuple[object, list[_Limit]]] = {}

    def _limits(self, ctx: RequestContext) -> list[_Limit]:
        """The caller's limits, made once per caller (and again for a changed key)."""
        p, key = ctx.principal, ctx.key
        caller = (p.tenant, p.team, key.id if key is not None else None)
        known = self._known.get(caller)
        if known is not None and known[0] is key:
            return known[1]
        found = []
        tenant = self.settings.tenants.get(p.tenant)
        if tenant is not None:
            found.append(_Limit("tenant", p.tenant, tenant.rpm, tenant.tpm))
        team = self.settings.teams.get(p.team) if p.team else None
        if team is not None and p.team:
            found.append(_Limit("team", p.team, team.rpm, team.tpm))
        if key is not None:
            rpm = key.spec.rpm if key.spec.rpm is not None else self.settings.default_key_rpm
            found.append(_Limit("key", key.id, rpm, key.spec.tpm))
        if len(self._known) >= _KNOWN:
            self._known.clear()
        self._known[caller] = (key, found)
        return found

    async def __call__(self, ctx: RequestContext) -> None:
        limits = self._limits(ctx)
        if not limits:
            return None
        now = time.time()
        minute = int(now // _WINDOW)
        reset = _WINDOW - (now % _WINDOW)
        reset_text = f"{math.ceil(reset)}s"
        windows = [limit.window(minute) for limit in limits]
        memory = self.memory  # no coroutine needed
        admitted = memory.admit_now(windows) if memory else await self.counters.admit(windows)
        for limit, (used, hit) in zip(limits, admitted, strict=False):  # it ends at a refusal
            if used is not None and limit.tpm is not None:
                self._headers(ctx, limit, "tokens", limit.tpm_text, limit.tpm - used, reset_text)
                if used >= limit.tpm:
                    raise self._refuse(limit, "tokens", limit.tpm, reset)
            if hit is not None and limit.rpm is not None:
                self._headers(ctx, limit, "requests", limit.rpm_text, limit.rpm - hit.count,
                              reset_text)  # fmt: skip
                if not hit.allowed:
                    raise self._refuse(limit, "requests", limit.rpm, reset)
        token_keys = [w.tokens_key for w in windows if w.tokens_limit is not None]
        if token_keys:
            ctx.on_complete(lambda c, o: self._count_tokens(token_keys, o))
        return None

    def _count_tokens(self, keys: list[str], outcome: Outcome) -> None:
        tokens = outcome.usage.total_tokens
        if self.memory:  # no task needed
            for key in keys:
                self.memory.add_now(key, tokens, _WINDOW * 2)
            return
        loop = asyncio.get_running_loop()
        for key in keys:
            task = loop.create_task(self.counters.add(key, tokens, _WINDOW * 2))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    @staticmethod
    def _headers(ctx: RequestContext, limit: _Limit, unit: str, cap: str, left: int,
                 reset: str) -> None:  # fmt: skip
        """The ``x-ratelimit-*`` headers: the key's limits, else the first scope's."""
        name_limit, name_left, name_reset = _HEADERS[unit]
        headers = ctx.response_headers
        if limit.scope != "key" and name_limit in headers:
            return
        headers[name_limit] = cap
        headers[name_left] = str(left) if left > 0 else "0"
        headers[name_reset] = reset

    def _refuse(self, limit: _Limit, unit: str, cap: int, reset: float) -> RateLimited:
        seconds = max(1, math.ceil(reset))
        error = RateLimited(
            f"rate limit reached for {limit.scope} '{limit.subject}': {cap} {unit} per minute; "
            f"try again in {seconds}s"
        )
        error.headers["retry-after"] = str(seconds)
        return error
