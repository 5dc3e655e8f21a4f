"""Analytics and health: ``/api/stats``, ``/api/requests``, ``/health``.

A virtual key sees only its own tenant's data; the master key sees every tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.admin.access import Access
from meterline.admin.http import answers_errors, int_param
from meterline.catalog import to_usd
from meterline.store import recent_requests, usage_stats
from meterline.surfaces.http import json_response

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["AdminAPI"]


class AdminAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [
            Route("/api/stats", self.stats, methods=["GET"]),
            Route("/api/requests", self.requests, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
        ]

    @answers_errors
    async def stats(self, request: Request) -> Response:
        caller = await self.access.caller(request)
        days = int_param(request, "days", 7, 1, 3650)
        groups = await usage_stats(self.gateway.engine, days=days, tenant=caller.tenant)
        totals = {
            "requests": sum(g.requests for g in groups),
            "errors": sum(g.errors for g in groups),
            "input_tokens": sum(g.input_tokens for g in groups),
            "output_tokens": sum(g.output_tokens for g in groups),
            "cost_usd": str(to_usd(sum(g.cost_pusd for g in groups))),
        }
        body = {"days": days, "tenant": caller.tenant, "totals": totals,
                "by_model": [g.as_json() for g in groups]}  # fmt: skip
        return json_response(body)

    @answers_errors
    async def requests(self, request: Request) -> Response:
        caller = await self.access.caller(request)
        limit = int_param(request, "limit", 50, 1, 1000)
        offset = int_param(request, "offset", 0, 0, 10**9)
        rows = await recent_requests(
            self.gateway.engine, limit=limit, offset=offset, tenant=caller.tenant
        )
        return json_response({"data": rows, "limit": limit, "offset": offset})

    async def health(self, request: Request) -> Response:
        try:
            async with self.gateway.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            database = "ok"
        except (SQLAlchemyError, OSError) as exc:
            database = f"error: {exc.__class__.__name__}"
        breakers = await self.gateway.ledger.breaker_states()
        counters = await self.gateway.counters.health()
        status = "ok" if database == "ok" and counters["status"] == "ok" else "degraded"
        body = {
            "status": status,
            "database": database,
            "counters": counters,
            "providers": [{"name": p.name} for p in self.gateway.providers],
            "breakers": breakers,
            "log_backlog": self.gateway.writer.backlog,
        }
        return json_response(body, 200 if status == "ok" else 503)
