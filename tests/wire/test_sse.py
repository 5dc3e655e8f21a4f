"""The SSE decoder gives the same events however the bytes are split."""

from __future__ import annotations

import pytest

from meterline.wire.sse import SSEDecoder, SSEEvent, encode_event

STREAM = (
    b": keep-alive comment\n\n"
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"id: 7\rdata: caf\xc3\xa9\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent('{"a": 1}', "message_start"),
    SSEEvent("line one\nline two"),
    SSEEvent("café", None, "7"),
    SSEEvent("[DONE]", None, "7"),  # the last event id persists, as the SSE spec says
]


def _decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)]
    return events + decoder.close()


def test_whole_stream() -> None:
    assert _decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_at_every_byte_boundary(cut: int) -> None:
    assert _decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert _decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_unterminated_last_event_is_flushed_on_close() -> None:
    assert _decode([b"data: tail"]) == [SSEEvent("tail")]


def test_encode_event_round_trips() -> None:
    framed = encode_event(b'{"x": 1}', "ping") + encode_event(b"[DONE]")
    assert framed == b'event: ping\ndata: {"x": 1}\n\ndata: [DONE]\n\n'
    assert _decode([framed]) == [SSEEvent('{"x": 1}', "ping"), SSEEvent("[DONE]")]
