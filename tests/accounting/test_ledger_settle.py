"""Settling against in-process counters happens at once, without a task per request; alerts
still go out when a settlement crosses a threshold."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from meterline.accounting.counters import MemoryCounters
from meterline.accounting.ledger import Ledger, Reservation, usd_to_pusd
from meterline.accounting.rules import Rule
from meterline.settings import AccountingSettings, BudgetEntry
from meterline.types import Principal


class _Sink:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, int]] = []

    async def alert(self, kind: str, subject: str, window: str, threshold: int, message: str
                    ) -> bool:  # fmt: skip
        self.alerts.append((kind, subject, threshold))
        return True

    async def trip(self, name: str, window: str, message: str) -> None:
        self.alerts.append(("trip", name, 100))


def _ledger() -> tuple[Ledger, MemoryCounters, _Sink]:
    counters, sink = MemoryCounters(), _Sink()
    budget = BudgetEntry(scope="tenant", subject="acme", period="daily", usd="1.00")
    settings = AccountingSettings(budgets=(budget,))
    return Ledger(counters, None, settings, sink), counters, sink  # type: ignore[arg-type]


async def _reserve(ledger: Ledger, amount: int) -> Reservation:
    rules = ledger.rules_for(Principal(tenant="acme"), None, "openai")
    result = await ledger.reserve(rules, amount)
    assert isinstance(result, Reservation)
    return result


async def test_in_process_settlement_is_immediate() -> None:
    ledger, counters, sink = _ledger()
    reservation = await _reserve(ledger, usd_to_pusd("0.30"))
    ledger.settle_later(reservation, usd_to_pusd("0.10"))
    # No await in between: the counters already hold the settled spend, nothing is pending.
    tenant = next(k for r, k in zip(reservation.rules, reservation.keys, strict=True)
                  if r.scope == "tenant")  # fmt: skip
    [level] = await counters.levels([tenant])
    assert (level.spent, level.reserved) == (usd_to_pusd("0.10"), 0)
    assert not ledger._pending
    assert sink.alerts == []


async def test_crossing_a_threshold_still_alerts() -> None:
    ledger, _, sink = _ledger()
    reservation = await _reserve(ledger, usd_to_pusd("0.90"))
    ledger.settle_later(reservation, usd_to_pusd("0.85"))
    assert len(ledger._pending) == 1  # only the alert needs a task
    await ledger.drain()
    assert sink.alerts == [("budget", "tenant:acme", 80)]


async def test_remaining_from_levels_read_before_matches_a_fresh_read() -> None:
    ledger, _, _ = _ledger()
    await _reserve(ledger, usd_to_pusd("0.25"))
    rules = ledger.rules_for(Principal(tenant="acme"), None, "openai")
    holds = ledger.holds(rules)
    before = await ledger.levels(rules, holds)
    amount = usd_to_pusd("0.05")
    from_before = await ledger.reserve(rules, amount, holds, before)
    fresh = await ledger.reserve(rules, amount)
    assert isinstance(from_before, Reservation) and isinstance(fresh, Reservation)
    assert from_before.remaining == usd_to_pusd("0.70")
    assert fresh.remaining == usd_to_pusd("0.65")  # one more reservation of 0.05 since


def test_rule_keys_name_scope_subject_and_window() -> None:
    rule = Rule("budget", "tenant", "acme", "daily", 1)
    ledger, _, _ = _ledger()
    [hold] = ledger.holds([rule])
    assert hold.key.startswith("spend:tenant:acme:daily:")
    assert hold.limit == 1 and hold.ttl > 2 * 86_400


async def test_holds_are_reused_until_their_window_ends(monkeypatch: Any) -> None:
    """A rule list's holds are made once and reused (same objects) — but never past the end of
    a window: a request just after midnight counts in the new day."""
    ledger, _, _ = _ledger()
    rules = ledger.rules_for(Principal(tenant="acme"), None, "openai")
    before_midnight = dt.datetime(2026, 3, 1, 23, 59, 59, 800_000, dt.UTC)
    monkeypatch.setattr(ledger, "_now", lambda: before_midnight)
    first = ledger.holds(rules)
    assert ledger.holds(rules) is first  # reused
    assert first[0].key.endswith("2026-03-01")
    monkeypatch.setattr(ledger, "_now", lambda: before_midnight + dt.timedelta(seconds=0.3))
    await asyncio.sleep(0.25)  # the remembered holds expired with the day (0.2 s left of it)
    after = ledger.holds(rules)
    assert after is not first and after[0].key.endswith("2026-03-02")
    assert len(ledger._merged) == 1  # the old holds' merge was let go
    # a reservation made from the remembered holds counts under the new day's counter
    result = await ledger.reserve(rules, usd_to_pusd("0.10"), after)
    assert isinstance(result, Reservation) and result.keys == [h.key for h in after]
