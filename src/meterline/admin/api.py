"""Read-only admin endpoints: analytics and health. (Keys, budgets and the rest come later.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.catalog import to_usd
from meterline.errors import GatewayError, InvalidRequest
from meterline.store import recent_requests, usage_stats
from meterline.surfaces.http import json_response
from meterline.wire.openai_response import encode_error

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["AdminAPI"]


def error_response(error: GatewayError) -> Response:
    return json_response(encode_error(error), error.status, error.headers)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an integer", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}", param=name)
    return value


class AdminAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[Route]:
        return [
            Route("/api/stats", self.stats, methods=["GET"]),
            Route("/api/requests", self.requests, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
        ]

    async def stats(self, request: Request) -> Response:
        try:
            days = _int_param(request, "days", 7, 1, 3650)
        except InvalidRequest as exc:
            return error_response(exc)
        groups = await usage_stats(self.gateway.engine, days=days)
        total_requests = sum(g.requests for g in groups)
        totals = {
            "requests": total_requests,
            "errors": sum(g.errors for g in groups),
            "input_tokens": sum(g.input_tokens for g in groups),
            "output_tokens": sum(g.output_tokens for g in groups),
            "cost_usd": str(to_usd(sum(g.cost_pusd for g in groups))),
        }
        return json_response(
            {"days": days, "totals": totals, "by_model": [g.as_json() for g in groups]}
        )

    async def requests(self, request: Request) -> Response:
        try:
            limit = _int_param(request, "limit", 50, 1, 1000)
            offset = _int_param(request, "offset", 0, 0, 10**9)
        except InvalidRequest as exc:
            return error_response(exc)
        rows = await recent_requests(self.gateway.engine, limit=limit, offset=offset)
        return json_response({"data": rows, "limit": limit, "offset": offset})

    async def health(self, request: Request) -> Response:
        try:
            async with self.gateway.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            database = "ok"
        except (SQLAlchemyError, OSError) as exc:
            database = f"error: {exc.__class__.__name__}"
        providers = [{"name": p.name} for p in self.gateway.providers]
        status = "ok" if database == "ok" else "degraded"
        body = {
            "status": status,
            "database": database,
            "providers": providers,
            "log_backlog": self.gateway.writer.backlog,
        }
        return json_response(body, 200 if status == "ok" else 503)
