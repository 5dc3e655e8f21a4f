"""How the gateway is served: uvicorn's httptools protocol, with each answer's head sent in the
same socket write as the answer's first body bytes.

uvicorn writes an answer's status line and headers as soon as the app starts the answer, and
each body message in a write of its own. On loopback a write costs a system call, the TCP
stack's work for the packet and, often, waking the reader: for a short streamed answer (head,
events, end) three of them where one would do. :class:`HeldHead` holds the head back until the
first body bytes (which, for every answer the gateway itself makes, follow in the same step of
the event loop) and writes both at once; if nothing follows within the loop's turn — a ``HEAD``
request, an app that is slow to send its body — the head goes out alone on the next turn.

Use :data:`UVICORN_OPTIONS` wherever uvicorn serves the app.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["UVICORN_OPTIONS", "HeldHead", "HttpProtocol"]

_HEAD = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"  # 100 Continue and the other 1xx: not held, nothing follows at once


class HeldHead:
    """A connection's transport that holds a response's head until the next write.

    A head is a write that starts with a status line. Body bytes that happened to start like
    one (a later message of a ``content-length`` body) would only wait for the next write or
    turn in the same way: the bytes and their order on the wire are unchanged either way."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif data.startswith(_HEAD) and not data.startswith(_INTERIM):
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a head still held (no body bytes came in the turn it was written in)."""
        head = self._head
        if head is not None:
            self._head = None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:  # the rest of the transport's interface
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a :class:`HeldHead`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = HeldHead(transport, self.loop)  # type: ignore[assignment]


UVICORN_OPTIONS: dict[str, Any] = {"http": HttpProtocol, "server_header": False}
