"""The ledger: which spend rules apply to a request, reservations against them, settlement,
alerts and breaker trips, and the rebuild of spend counters from the request log.

Reservations go through :class:`~meterline.accounting.counters.Counters`, whose ``reserve`` is
atomic across every rule a request falls under, so concurrent requests (on one replica or many,
with Redis) can never together pass a limit: each holds its worst-case cost until it settles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.accounting.alerts import AlertSink
from meterline.accounting.counters import Counters, Hold, ImmediateCounters, Level
from meterline.accounting.periods import Period
from meterline.accounting.rules import Rule, usd_text
from meterline.auth import ApiKey
from meterline.catalog import parse_usd_per_million, to_usd
from meterline.settings import AccountingSettings, BudgetEntry
from meterline.store.schema import budgets, requests
from meterline.types import Principal

__all__ = ["Ledger", "Reservation", "usd_to_pusd"]

log = logging.getLogger("meterline.accounting")

_ALERT_THRESHOLDS = (80, 100)
_HOLDS_FOR = 30.0  # seconds a rule list's holds are reused (never past a window's end)
_SCOPE_COLUMNS = {"tenant": requests.c.tenant, "team": requests.c.team, "key": requests.c.key_id,
                  "provider": requests.c.provider}  # fmt: skip


def usd_to_pusd(usd: str) -> int:
    """``"5.00"`` → 5 × 10¹² pico-dollars (exact)."""
    return parse_usd_per_million(usd) * 1_000_000


@dataclass(frozen=True, slots=True)
class Reservation:
    rules: list[Rule]
    keys: list[str]  # each rule's counter, in order
    holds: list[Hold]  # one per counter
    amount: int
    remaining: int | None  # the tightest budget's room after this reservation


def _room(rules: list[Rule], levels: list[Level], extra: int) -> int | None:
    """The room the tightest budget among ``rules`` has left, ``extra`` more being used than
    ``levels`` say; ``None`` when no rule is a budget."""
    room = None
    for rule, level in zip(rules, levels, strict=True):
        if rule.kind == "budget":
            left = rule.limit - level.spent - level.reserved - extra
            if room is None or left < room:
                room = left
    return room


class Ledger:
    def __init__(
        self, counters: Counters, engine: AsyncEngine, settings: AccountingSettings, sink: AlertSink
    ) -> None:
        self.counters = counters
        self.engine = engine
        self.settings = settings
        self.sink = sink
        self._stored: list[Rule] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._fixed = self._configured()
        self._rules = list(self._fixed)
        self._applicable: dict[tuple[object, ...], list[Rule]] = {}  # rules_for, remembered
        # holds() remembered per rule list (by identity; the entry keeps the list alive, so
        # its id is not reused) until a window ends or _HOLDS_FOR passes: (list, expiry, holds)
        self._held: dict[int, tuple[list[Rule], float, list[Hold]]] = {}
        self._merged: dict[int, tuple[list[Hold], list[Hold]]] = {}  # holds → merged per counter

    def _configured(self) -> list[Rule]:
        acc = self.settings
        rules = [Rule("budget", b.scope, b.subject, b.period, usd_to_pusd(b.usd))  # type: ignore[arg-type]
                 for b in acc.budgets]  # fmt: skip
        if acc.daily_halt_usd is not None:
            rules.append(Rule("breaker", "global", "*", "daily", usd_to_pusd(acc.daily_halt_usd)))
        if acc.monthly_alert_usd is not None:
            rules.append(
                Rule("alert", "global", "*", "monthly", usd_to_pusd(acc.monthly_alert_usd))
            )
        for provider, usd in acc.provider_daily_halt_usd.items():
            rules.append(Rule("breaker", "provider", provider, "daily", usd_to_pusd(usd)))
        return rules

    @property
    def rules(self) -> list[Rule]:
        """Configured rules, overridden by the ones stored with ``PUT /api/budget``."""
        return self._rules

    def _merge(self) -> None:
        stored = {(r.scope, r.subject, r.period) for r in self._stored}
        kept = [r for r in self._fixed
                if r.kind != "budget" or (r.scope, r.subject, r.period) not in stored]  # fmt: skip
        self._rules = kept + self._stored
        self._applicable.clear()
        self._held.clear()
        self._merged.clear()

    def rules_for(
        self, principal: Principal, key: ApiKey | None, provider: str | None
    ) -> list[Rule]:
        """The rules a request falls under (the same list object for the same caller and
        provider until the rules change: do not modify it)."""
        spec = key.spec if key is not None else None
        budget = (key.id, spec.budget_pusd, spec.budget_period) if key and spec else None
        cache_key = (principal, provider, budget)
        found = self._applicable.get(cache_key)
        if found is not None:
            return found
        found = [r for r in self.rules if r.applies(principal, provider)]
        if key is not None and key.spec.budget_pusd is not None and key.spec.budget_period:
            period: Period = key.spec.budget_period  # type: ignore[assignment]
            found.append(Rule("budget", "key", key.id, period, key.spec.budget_pusd))
        if len(self._applicable) >= 10_000:  # callers come and go; keep the memory bounded
            self._applicable.clear()
        self._applicable[cache_key] = found
        return found

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def holds(self, rules: Iterable[Rule], now: dt.datetime | None = None) -> list[Hold]:
        """Each rule's counter in its current window, in order. For a list from
        :meth:`rules_for` (and no ``now``) the same holds come back until one of the windows
        ends, or for ``_HOLDS_FOR`` seconds: a hold's key changes only with its window, and its
        TTL (the window's end plus two days' grace) may run up to ``_HOLDS_FOR`` seconds long."""
        if now is not None or not isinstance(rules, list):
            return [r.hold(now or self._now(), self.settings.timezone) for r in rules]
        found = self._held.get(id(rules))
        clock = time.monotonic()
        if found is not None and found[0] is rules and clock < found[1]:
            return found[2]
        if found is not None:  # the list's previous holds: their merge is not asked for again
            self._merged.pop(id(found[2]), None)
        now, tz = self._now(), self.settings.timezone
        each = [r.hold(now, tz) for r in rules]
        ends = [(r.window(now, tz).end - now).total_seconds() for r in rules]
        if len(self._merged) >= 10_000:  # callers come and go; keep the memory bounded
            self._held.clear()
            self._merged.clear()
        self._held[id(rules)] = (rules, clock + min([_HOLDS_FOR, *ends]), each)
        self._merged[id(each)] = (each, self._merged_holds(each))
        return each

    def _merged_for(self, each: list[Hold]) -> list[Hold]:
        """:meth:`_merged_holds` of ``each``, remembered when ``each`` came from :meth:`holds`."""
        found = self._merged.get(id(each))
        return found[1] if found is not None and found[0] is each else self._merged_holds(each)

    async def levels(self, rules: list[Rule], holds: list[Hold] | None = None) -> list[Level]:
        """Each rule's spend and reservations (``holds``: the rules' own, when already made)."""
        return await self.counters.levels([h.key for h in holds or self.holds(rules)])

    @staticmethod
    def _merged_holds(each: list[Hold]) -> list[Hold]:
        """One hold per counter: rules over the same scope and window (a budget and a breaker)
        share a counter, which must be reserved once, against the strictest limit."""
        merged: dict[str, Hold] = {}
        for hold in each:
            seen = merged.get(hold.key)
            if seen is not None:
                limits = [x for x in (seen.limit, hold.limit) if x is not None]
                hold = Hold(hold.key, min(limits) if limits else None, max(seen.ttl, hold.ttl))
            merged[hold.key] = hold
        return list(merged.values())

    async def reserve(
        self,
        rules: list[Rule],
        amount: int,
        each: list[Hold] | None = None,
        before: list[Level] | None = None,
    ) -> Reservation | Rule:
        """Reserve ``amount`` under every rule, or return the rule that has no room.

        ``each``: the rules' holds, when already made; ``before``: their levels just read, from
        which the room left is worked out instead of reading the counters again (it is only
        reported, in a header, so a concurrent request slipping in between does no harm)."""
        each = each or self.holds(rules)  # one per rule, in order
        holds = self._merged_for(each)
        refused = await self.counters.reserve(holds, amount)
        if refused is not None:
            full = holds[refused]
            return next(r for r, h in zip(rules, each, strict=True)
                        if h.key == full.key and r.limit == full.limit)  # fmt: skip
        if before is not None:  # what was read, with this reservation's amount on top
            remaining = _room(rules, before, amount)
        elif any(r.kind == "budget" for r in rules):
            remaining = _room(rules, await self.counters.levels([h.key for h in each]), 0)
        else:
            remaining = None
        return Reservation(rules, [h.key for h in each], holds, amount, remaining)

    def settle_later(self, reservation: Reservation, actual: int) -> None:
        """Settle from a completion callback (which cannot await); tracked until it is done.

        Counters that need no awaiting settle at once (nothing to wait for, and a task per
        request costs more than the settlement); a task is made only to raise alerts, when a
        threshold was crossed."""
        if isinstance(self.counters, ImmediateCounters):
            self._warn_if_over(reservation, actual)
            spent = self.counters.settle_now(reservation.holds, reservation.amount, actual)
            if crossed := self._crossed(reservation, actual, spent):
                self._track(self._alert(crossed))
            return
        self._track(self.settle(reservation, actual))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self, reservation: Reservation, actual: int) -> None:
        self._warn_if_over(reservation, actual)
        spent = await self.counters.settle(reservation.holds, reservation.amount, actual)
        await self._alert(self._crossed(reservation, actual, spent))

    @staticmethod
    def _warn_if_over(reservation: Reservation, actual: int) -> None:
        if actual > reservation.amount:
            log.warning("spend %d exceeded its reservation %d", actual, reservation.amount)

    @staticmethod
    def _crossed(
        reservation: Reservation, actual: int, spent: list[int]
    ) -> list[tuple[Rule, int, int]]:
        """(rule, threshold, its counter's spend) for each alert threshold the rules' spend
        stands at or past after settling; ``spent``: each hold's spend right after."""
        if actual <= 0:
            return []
        by_key = {h.key: s for h, s in zip(reservation.holds, spent, strict=True)}
        crossed = []
        for rule, key in zip(reservation.rules, reservation.keys, strict=True):
            used = by_key[key] * 100 // rule.limit if rule.limit else 0
            for threshold in _ALERT_THRESHOLDS:
                if used >= threshold and (rule.kind == "budget" or threshold == 100):
                    crossed.append((rule, threshold, by_key[key]))
        return crossed

    async def _alert(self, crossed: list[tuple[Rule, int, int]]) -> None:
        """Alerts and breaker trips for the thresholds :meth:`_crossed` found."""
        now = self._now()
        for rule, threshold, spent in crossed:
            if rule.kind == "breaker":
                await self._trip(rule)
                continue
            window = rule.window(now, self.settings.timezone).label
            message = f"{rule.name}: {threshold}% reached ({usd_text(spent)} spent)"
            await self.sink.alert(rule.kind, f"{rule.scope}:{rule.subject}", window, threshold,
                                  message)  # fmt: skip

    def refused_later(self, rule: Rule) -> None:
        """A request was refused by ``rule``: trip a breaker, or alert that a budget is
        exhausted (its 100% alert). Called from sync code; tracked until done."""
        self._track(self._refused(rule))

    async def _refused(self, rule: Rule) -> None:
        if rule.kind == "breaker":
            await self._trip(rule)
            return
        window = rule.window(self._now(), self.settings.timezone).label
        message = f"{rule.name}: exhausted, requests are being refused"
        await self.sink.alert(rule.kind, f"{rule.scope}:{rule.subject}", window, 100, message)

    async def _trip(self, rule: Rule) -> None:
        window = rule.window(self._now(), self.settings.timezone).label
        message = f"{rule.name} tripped: traffic under it is halted until {window} ends"
        if await self.sink.alert("breaker", f"{rule.scope}:{rule.subject}", window, 100, message):
            await self.sink.trip(_breaker_name(rule), window, message)

    async def drain(self) -> None:
        """Wait for settlements still in flight (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def status(self, rules: list[Rule]) -> list[dict[str, object]]:
        """Each rule with its current window's spend, for ``GET /api/budget``."""
        now = self._now()
        levels = await self.levels(rules, self.holds(rules, now))
        out: list[dict[str, object]] = []
        for rule, level in zip(rules, levels, strict=True):
            window = rule.window(now, self.settings.timezone)
            used = level.spent + level.reserved
            entry: dict[str, object] = {
                "kind": rule.kind, "scope": rule.scope, "subject": rule.subject,
                "period": rule.period, "window": window.label,
                "resets_at": window.end.isoformat(),
                "limit_usd": str(to_usd(rule.limit)), "spent_usd": str(to_usd(level.spent)),
                "reserved_usd": str(to_usd(level.reserved)),
                "remaining_usd": str(to_usd(max(0, rule.limit - used))),
                "used_pct": round(100 * level.spent / rule.limit, 2) if rule.limit else None,
            }  # fmt: skip
            if rule.kind == "breaker":
                entry["state"] = "open" if level.spent >= rule.limit else "closed"
            out.append(entry)
        return out

    async def breaker_states(self) -> list[dict[str, object]]:
        states = await self.status([r for r in self.rules if r.kind == "breaker"])
        records = await self.sink.breaker_rows()
        for state, rule in zip(states, [r for r in self.rules if r.kind == "breaker"], strict=True):
            record = records.get(_breaker_name(rule))
            if record is not None and record["window"] == state["window"]:
                state["state"] = record["state"]
                state["reason"] = record["reason"]
        return states

    async def load(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(budgets))).all()
        self._stored = [Rule("budget", r.scope, r.subject, r.period, r.limit_pusd) for r in rows]
        self._merge()

    async def put_budget(self, entry: BudgetEntry) -> Rule:
        rule = Rule("budget", entry.scope, entry.subject, entry.period, usd_to_pusd(entry.usd))  # type: ignore[arg-type]
        now = self._now()
        async with self.engine.begin() as conn:
            await conn.execute(delete(budgets).where(
                budgets.c.scope == rule.scope, budgets.c.subject == rule.subject,
                budgets.c.period == rule.period))  # fmt: skip
            await conn.execute(budgets.insert().values(
                scope=rule.scope, subject=rule.subject, period=rule.period,
                limit_pusd=rule.limit, updated_at=now))  # fmt: skip
        await self.load()
        await self.rebuild([rule])
        return rule

    async def rebuild(self, rules: Iterable[Rule] | None = None) -> None:
        """Seed spend counters from the request log (indexed by scope and time) for the
        current window of each rule; counters that already exist (Redis) are left alone."""
        now = self._now()
        for rule in self.rules if rules is None else rules:
            hold = rule.hold(now, self.settings.timezone)
            start = rule.window(now, self.settings.timezone).start
            query = select(func.coalesce(func.sum(requests.c.cost_pusd), 0)).where(
                requests.c.created_at >= start
            )
            column = _SCOPE_COLUMNS.get(rule.scope)
            if column is not None:
                query = query.where(column == rule.subject)
            async with self.engine.connect() as conn:
                spent = int((await conn.execute(query)).scalar_one())
            await self.counters.seed(hold.key, spent, hold.ttl)

    async def rebuild_keys(self, keys: Iterable[ApiKey]) -> None:
        key_rules = [r for k in keys for r in self.rules_for(k.principal, k, None)
                     if r.scope == "key"]  # fmt: skip
        await self.rebuild(key_rules)


def _breaker_name(rule: Rule) -> str:
    return "global" if rule.scope == "global" else f"{rule.scope}:{rule.subject}"
