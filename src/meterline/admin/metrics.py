"""``GET /metrics``: Prometheus's text format, for the master key (the counts span every
tenant). Point a scrape job at it with ``authorization: {credentials: <master key>}``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.admin.access import Access
from meterline.admin.http import answers_errors
from meterline.metrics import CONTENT_TYPE, render

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["MetricsAPI"]


class MetricsAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.metrics, methods=["GET"])]

    @answers_errors
    async def metrics(self, request: Request) -> Response:
        await self.access.admin(request)
        text = render(await self.gateway.metrics_snapshot())
        return Response(text, headers={"content-type": CONTENT_TYPE})
