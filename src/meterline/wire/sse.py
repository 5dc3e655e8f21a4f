"""Server-sent events: an incremental decoder (bytes in, events out) and the encoder.

The decoder follows the WHATWG rules that matter for LLM streams: lines end in LF, CRLF or CR;
``data:`` lines of one event are joined by LF; a blank line ends the event; ``:`` lines are
comments. It can be fed at any byte boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "encode_event"]


@dataclass(slots=True)  # not frozen: one per streamed event, and frozen __init__ costs 2x
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
        buf = self._buffer + chunk
        held = b""
        if b"\r" in buf:  # CRLF and CR become LF; a CR at the end may be half of a CRLF
            if buf.endswith(b"\r"):
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buffer = lines.pop() + held  # the line not yet ended
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:  # nearly every line of an LLM stream is "data: …" or blank
            if line[:6] == b"data: ":
                data.append(line[6:].decode("utf-8"))
            elif not line:
                if (event := self._dispatch()) is not None:
                    events.append(event)
                data = self._data
            else:
                self._field(line.decode("utf-8"))
        return events

    def _field(self, line: str) -> None:
        """A line that is neither blank nor ``data: …``: a comment or another field."""
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value

    def _dispatch(self) -> SSEEvent | None:
        data = self._data
        if not data and self._event is None:
            return None
        event = SSEEvent(data[0] if len(data) == 1 else "\n".join(data), self._event, self._id)
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
