"""Commands stage: a last user message starting with ``/feedback`` is answered by the gateway
itself — never forwarded, never cached — as a normal chat answer on either surface."""

from __future__ import annotations

from meterline.catalog import ModelInfo
from meterline.errors import GatewayError
from meterline.pipeline.assemble import replay
from meterline.pipeline.context import RequestContext, Route
from meterline.pipeline.pipeline import Reply
from meterline.routing.feedback import FeedbackService, parse_command
from meterline.types import ChatResponse, Message, TextPart, Usage

__all__ = ["CommandStage"]

_GATEWAY = ModelInfo(provider="meterline", name="feedback", tier="economy")


def _answer(ctx: RequestContext, text: str) -> Reply:
    response = ChatResponse(
        id=f"chatcmpl-{ctx.request_id}", model="meterline-feedback",
        message=Message("assistant", (TextPart(text),)), finish_reason="stop", usage=Usage(),
    )  # fmt: skip
    return replay(response) if ctx.request.stream else response


class CommandStage:
    def __init__(self, feedback: FeedbackService) -> None:
        self.feedback = feedback

    async def __call__(self, ctx: RequestContext) -> Reply | None:
        last = ctx.request.messages[-1] if ctx.request.messages else None
        if last is None or last.role != "user" or not last.text.lstrip().startswith("/feedback"):
            return None
        ctx.route = Route("meterline", _GATEWAY, "in-chat command")
        ctx.response_headers["x-meterline-cache"] = "skip"
        try:
            rating, task = parse_command(last.text)
            result = await self.feedback.rate(
                tenant=ctx.principal.tenant, key_id=ctx.principal.key_id, task=task,
                rating=rating, source="chat", exclude=ctx.request_id,
            )  # fmt: skip
        except GatewayError as exc:
            return _answer(ctx, f"Feedback not recorded: {exc.message}")
        model = f"{result.provider}/{result.model}"
        return _answer(ctx, f"Thanks! Task {result.request_id} ({model}) is now rated "
                            f"{result.rating}/5.")  # fmt: skip
