"""``POST /api/feedback {taskId, rating}``: rate an answer (1–5) from outside the chat."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.admin.access import Access
from meterline.admin.http import answers_errors, json_body
from meterline.errors import InvalidRequest
from meterline.routing.feedback import TASK_ID
from meterline.surfaces.http import json_response

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["FeedbackAPI"]

_TASK_ID = re.compile(TASK_ID)


class FeedbackAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [Route("/api/feedback", self.rate, methods=["POST"])]

    @answers_errors
    async def rate(self, request: Request) -> Response:
        caller = await self.access.caller(request)
        body = await json_body(request)
        task, rating = body.get("taskId"), body.get("rating")
        if not isinstance(task, str) or not _TASK_ID.fullmatch(task):
            raise InvalidRequest(
                "'taskId' must be a request id (or at least 4 of its last or first hex digits)",
                param="taskId",
            )
        if rating in ("good", "bad"):
            rating = 5 if rating == "good" else 1
        if not isinstance(rating, int) or isinstance(rating, bool):
            raise InvalidRequest("'rating' must be 1–5, 'good' or 'bad'", param="rating")
        assert self.gateway.feedback is not None
        result = await self.gateway.feedback.rate(
            tenant=caller.tenant, key_id=None, task=task.lower(), rating=rating, source="api"
        )
        return json_response({"taskId": result.request_id, "provider": result.provider,
                              "model": result.model, "rating": result.rating})  # fmt: skip
