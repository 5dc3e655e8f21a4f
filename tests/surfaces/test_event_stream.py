"""EventStreamResponse's messages to the server: the last piece goes with the end of the answer."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from meterline.surfaces.http import EventStreamResponse, LastPiece


async def _run(body: AsyncIterator[bytes]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:  # the client never leaves
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    await EventStreamResponse(body, {"x-test": "1"})({}, receive, send)  # type: ignore[arg-type]
    return sent


async def test_a_last_piece_is_sent_with_the_end_of_the_answer() -> None:
    closed = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            yield LastPiece(b"data: [DONE]\n\n")
            yield b"never sent"
        finally:
            closed.append(True)

    sent = await _run(body())
    assert sent[0]["type"] == "http.response.start"
    assert (b"x-test", b"1") in sent[0]["headers"]
    bodies = [(m["body"], m["more_body"]) for m in sent[1:]]
    assert bodies == [(b"data: 1\n\n", True), (b"data: [DONE]\n\n", False)]
    assert closed == [True]  # the body's generator was closed, so its clean-up ran


async def test_a_body_without_a_last_piece_ends_with_an_empty_final_message() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"

    sent = await _run(body())
    bodies = [(m["body"], m["more_body"]) for m in sent[1:]]
    assert bodies == [(b"data: 1\n\n", True), (b"", False)]
