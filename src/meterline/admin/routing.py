"""``/api/routing/explain``: the classification and routing decision for a prompt or a chat
request, without calling a model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.admin.access import Access
from meterline.admin.http import answers_errors, json_body
from meterline.errors import InvalidRequest
from meterline.surfaces.http import json_response
from meterline.types import ChatRequest, Message, TextPart
from meterline.wire.openai_request import decode_request

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["RoutingAPI"]


class RoutingAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [Route("/api/routing/explain", self.explain, methods=["GET", "POST"])]

    @answers_errors
    async def explain(self, request: Request) -> Response:
        await self.access.caller(request)
        if request.method == "POST":
            body = await json_body(request)
            chat = decode_request({"model": "auto", **body})
        else:
            prompt = request.query_params.get("prompt")
            if not prompt:
                raise InvalidRequest("give a 'prompt' query parameter, or POST a chat request",
                                     param="prompt")  # fmt: skip
            model = request.query_params.get("model", "auto")
            chat = ChatRequest(model, (Message("user", (TextPart(prompt),)),))
        return json_response(self.gateway.explain(chat))
