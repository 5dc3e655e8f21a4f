"""``/api/budget``: budgets, spend per period, remaining, breaker states and recent alerts;
``PUT`` sets a budget (master key only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.accounting.ledger import usd_to_pusd
from meterline.accounting.rules import Rule
from meterline.admin.access import Access, Caller
from meterline.admin.http import answers_errors, json_body
from meterline.errors import InvalidRequest
from meterline.settings import BudgetEntry
from meterline.surfaces.http import json_response

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["BudgetAPI"]

_SCOPES = ("global", "tenant", "team", "key")
_PERIODS = ("daily", "weekly", "monthly")


def _entry(body: dict[str, object]) -> BudgetEntry:
    scope, period, usd = body.get("scope"), body.get("period"), body.get("usd")
    subject = body.get("subject", "*" if scope == "global" else None)
    if scope not in _SCOPES:
        raise InvalidRequest(f"'scope' must be one of {', '.join(_SCOPES)}", param="scope")
    if period not in _PERIODS:
        raise InvalidRequest(f"'period' must be one of {', '.join(_PERIODS)}", param="period")
    if not isinstance(subject, str) or not subject:
        raise InvalidRequest(f"a {scope} budget needs a 'subject'", param="subject")
    try:
        usd_to_pusd(str(usd))
    except (ValueError, ArithmeticError):
        raise InvalidRequest("'usd' must be a decimal amount, e.g. '5.00'", param="usd") from None
    return BudgetEntry(scope=str(scope), period=str(period), usd=str(usd), subject=subject)


class BudgetAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [
            Route("/api/budget", self.show, methods=["GET"]),
            Route("/api/budget", self.put, methods=["PUT"]),
        ]

    async def _visible(self, caller: Caller) -> list[Rule]:
        ledger = self.gateway.ledger
        keys = await self.gateway.keys.list(caller.tenant)
        key_rules = [
            r for k in keys for r in ledger.rules_for(k.principal, k, None) if r.scope == "key"
        ]
        rules = [r for r in ledger.rules if caller.tenant is None or r.scope == "global"
                 or (r.scope == "tenant" and r.subject == caller.tenant)]  # fmt: skip
        return rules + key_rules

    @answers_errors
    async def show(self, request: Request) -> Response:
        caller = await self.access.caller(request)
        ledger = self.gateway.ledger
        body: dict[str, object] = {
            "timezone": self.gateway.settings.accounting.timezone,
            "downgrade_at": self.gateway.settings.accounting.downgrade_at,
            "rules": await ledger.status(await self._visible(caller)),
            "breakers": await ledger.breaker_states(),
        }
        if caller.admin:
            body["breaker_records"] = await ledger.sink.breaker_rows()
            body["alerts"] = await ledger.sink.recent()
        return json_response(body)

    @answers_errors
    async def put(self, request: Request) -> Response:
        await self.access.admin(request)
        rule = await self.gateway.ledger.put_budget(_entry(await json_body(request)))
        return json_response((await self.gateway.ledger.status([rule]))[0])
