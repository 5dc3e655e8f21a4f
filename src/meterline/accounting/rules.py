"""Spend rules: budgets (global / tenant / team / key) and spend breakers, as counter holds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from meterline.accounting.counters import Hold
from meterline.accounting.periods import Period, Window, window
from meterline.catalog import to_usd
from meterline.types import Principal

__all__ = ["Rule", "RuleKind", "usd_text"]

RuleKind = Literal["budget", "breaker", "alert"]
_GRACE = 2 * 86_400  # counters outlive their window by two days


class _WindowCache:
    """The current window per (period, zone): computing it converts time zones, which is
    slow enough to matter when every request holds several rules."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], Window] = {}

    def __call__(self, period: Period, tz: str, now: dt.datetime) -> Window:
        found = self._current.get((period, tz))
        if found is None or not found.start <= now < found.end:
            found = window(period, now, tz)
            self._current[(period, tz)] = found
        return found


_window = _WindowCache()


def usd_text(pusd: int) -> str:
    """``$1,234.50``, ``$0.000125``: to the micro-dollar, at least two decimals."""
    text = f"{to_usd(pusd):,.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One spend limit. ``kind`` budget: refuse past ``limit``; breaker: halt everything past
    ``limit``; alert: only count, and alert when ``limit`` is reached."""

    kind: RuleKind
    scope: str  # global | tenant | team | key | provider
    subject: str
    period: Period
    limit: int  # pico-dollars
    _prefix: str = field(init=False, repr=False, compare=False)  # of its counters' keys

    def __post_init__(self) -> None:
        # Budgets and breakers over the same scope and window share one spend counter.
        object.__setattr__(self, "_prefix", f"spend:{self.scope}:{self.subject}:")

    @property
    def name(self) -> str:
        who = "global" if self.scope == "global" else f"{self.scope} {self.subject}"
        what = {"budget": "budget", "breaker": "spend breaker", "alert": "spend alert"}[self.kind]
        return f"{who} {self.period} {what} of {usd_text(self.limit)}"

    def applies(self, principal: Principal, provider: str | None) -> bool:
        scope = self.scope
        if scope == "global":
            return True
        if scope == "tenant":
            return principal.tenant == self.subject
        if scope == "team":
            return principal.team == self.subject
        if scope == "key":
            return principal.key_id == self.subject
        return scope == "provider" and provider == self.subject

    def window(self, now: dt.datetime, tz: str) -> Window:
        return _window(self.period, tz, now)

    def hold(self, now: dt.datetime, tz: str) -> Hold:
        w = _window(self.period, tz, now)
        ttl = int(w.seconds_left(now)) + _GRACE
        return Hold(self._prefix + w.label, self.limit if self.kind != "alert" else None, ttl)
