"""Completion callbacks: run once; deferred ones after the current turn of the event loop (the
answer is written first), priced outcome available at once either way."""

from __future__ import annotations

import asyncio

from meterline.catalog import Catalog
from meterline.pipeline.context import Outcome, RequestContext, Route
from meterline.types import ChatRequest, Message, TextPart, Usage

NANO = next(m for m in Catalog.builtin() if m.key == "openai:gpt-4.1-nano")


def _ctx(seen: list[str]) -> RequestContext:
    request = ChatRequest("gpt-4.1-nano", (Message("user", (TextPart("hi"),)),))
    ctx = RequestContext(request, "openai")
    ctx.route = Route("openai", NANO, "test")

    def first(c: RequestContext, outcome: Outcome) -> None:
        seen.append(f"first:{outcome.status}")

    def failing(c: RequestContext, outcome: Outcome) -> None:
        raise RuntimeError("an observer broke")

    def last(c: RequestContext, outcome: Outcome) -> None:
        seen.append(f"last:{outcome.cost}")

    for callback in (first, failing, last):
        ctx.on_complete(callback)
    return ctx


def test_deferred_callbacks_run_on_the_next_turn_of_the_loop() -> None:
    seen: list[str] = []

    async def main() -> tuple[list[str], int]:
        ctx = _ctx(seen)
        outcome = ctx.complete("ok", Usage(1000, 1000), defer=True)
        before = list(seen)  # the answer would be written here, before any bookkeeping
        again = ctx.complete("error", Usage())  # once only: the first outcome stands
        assert again is outcome
        await asyncio.sleep(0)
        return before, outcome.cost

    before, cost = asyncio.run(main())
    assert before == []
    assert cost > 0
    assert seen == [f"last:{cost}", "first:ok"]  # in reverse order, past a failing one


def test_without_a_running_loop_they_run_at_once() -> None:
    seen: list[str] = []
    outcome = _ctx(seen).complete("ok", Usage(10, 10), defer=True)
    assert seen == [f"last:{outcome.cost}", "first:ok"]
