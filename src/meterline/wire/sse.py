"""Server-sent events: an incremental decoder (bytes in, events out) and the encoder.

The decoder follows the WHATWG rules that matter for LLM streams: lines end in LF, CRLF or CR;
``data:`` lines of one event are joined by LF; a blank line ends the event; ``:`` lines are
comments. It can be fed at any byte boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "encode_event"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            end = self._line_end()
            if end is None:
                return events
            line, skip = end
            raw = self._buffer[:line]
            self._buffer = self._buffer[line + skip :]
            event = self._line(raw.decode("utf-8"))
            if event is not None:
                events.append(event)

    def _line_end(self) -> tuple[int, int] | None:
        buf = self._buffer
        lf, cr = buf.find(b"\n"), buf.find(b"\r")
        if cr == -1 and lf == -1:
            return None
        if cr == -1 or (lf != -1 and lf < cr):
            return lf, 1
        if cr + 1 == len(buf):
            return None  # a CR at the end may be the first half of a CRLF
        return cr, 2 if buf[cr + 1 : cr + 2] == b"\n" else 1

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data and self._event is None:
            return None
        event = SSEEvent("\n".join(self._data), self._event, self._id)
        self._data, self._event = [], None
        return event

    def close(self) -> list[SSEEvent]:
        """Flush an event left unterminated when the stream ended."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame: ``event: …`` (when given) and ``data: …`` followed by a blank line."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
