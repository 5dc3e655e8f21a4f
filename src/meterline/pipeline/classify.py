"""Classify stage: task type, complexity, language, stack and domain, on every request.

Fail-open: a classifier error is logged and the request goes on unclassified.
"""

from __future__ import annotations

import logging

from meterline.pipeline.context import RequestContext
from meterline.routing.classifier import classify

__all__ = ["ClassifyStage"]

log = logging.getLogger("meterline.routing")


class ClassifyStage:
    async def __call__(self, ctx: RequestContext) -> None:
        try:
            ctx.classification = classify(ctx.request)
        except Exception:  # noqa: BLE001 - fail open: routing falls back to tiers
            log.exception("classifying request %s failed; continuing unclassified", ctx.request_id)
        return None
