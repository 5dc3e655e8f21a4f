"""A lean HTTP/1.1 client for the calls to providers: keep-alive connections per origin, each
request sent in one write, answers parsed by llhttp (``httptools``, the parser uvicorn uses).

A gateway's upstream calls are all alike (a JSON body out; a JSON body or an event stream back),
so this does only what they need: pooled connections (at most ``limit_per_host`` at once per
origin, idle ones kept ``keepalive`` seconds), TLS, content-length, chunked and read-to-close
bodies, gzip/deflate answers, the body handed over as it arrives (one piece per socket read),
and two timers per call: the first byte of the answer's body, then the whole call. A pooled
connection that the upstream closed while it sat idle is replaced and the request sent again,
once, if nothing of the answer had arrived. Outbound proxies come from the environment
(``providers/proxy.py``). Redirects, cookies and HTTP/2 are not spoken: providers' APIs need
none of them. See ``benchmarks/NOTES.md`` (row 19) for why this is not aiohttp's client.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools

from meterline.providers.proxy import Proxies, Proxy, open_tunnel

__all__ = ["Response", "UpstreamClosed", "UpstreamPool", "UpstreamTimedOut", "UpstreamUndecodable"]

_PAUSE_AT = 1 << 20  # bytes received and not yet read: stop reading the socket


class UpstreamClosed(ConnectionError):
    """The connection failed or closed before the answer was complete."""


class UpstreamUndecodable(UpstreamClosed):
    """The answer came in a content-encoding this client does not decode."""


class UpstreamTimedOut(TimeoutError):
    """The first byte of the body, or the whole answer, did not arrive in time."""


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@lru_cache(maxsize=4096)
def _split(url: str) -> tuple[_Origin, str, str]:
    """(origin, request target, its `host` header line) of ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    origin = _Origin(parts.scheme, parts.hostname, port)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, target, f"host: {origin.host_header}\r\n"


_ACCEPT_ENCODING = "accept-encoding: gzip, deflate\r\n"  # what Response decodes


def _head(
    method: str,
    split: tuple[_Origin, str, str],
    headers: Mapping[str, str],
    length: int | None,
    via: Proxy | None,
) -> bytes:
    """The request's head (``split``: what :func:`_split` made of its URL); ``via``: an http
    proxy it is asked of (full URL as the target)."""
    origin, target, host = split
    if via is not None:
        target = f"http://{origin.host_header}{target}"
    lines = [f"{method} {target} HTTP/1.1\r\n", host]
    if "accept-encoding" not in headers:  # without it any coding would be acceptable
        lines.append(_ACCEPT_ENCODING)
    if via is not None and via.authorization:
        lines.append(f"proxy-authorization: {via.authorization}\r\n")
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    if length is not None:
        lines.append(f"content-length: {length}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it parses one answer at a time into its own fields."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] = self.loop.create_future()
        self.pieces: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.started = False  # any byte of this answer arrived
        self.complete = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.framed = False  # content-length or chunked: the body does not end with the socket
        self.keep_alive = False
        self.encoding = b""
        self.timer: asyncio.TimerHandle | None = None
        self.body_seen = False

    # -- sending ---------------------------------------------------------------------------

    def send(self, data: bytes, first_byte: float, total: float) -> None:
        if self.started or self.complete:
            self._begin()
        assert self.transport is not None
        self.transport.write(data)
        now = self.loop.time()
        self.deadline = now + total
        if first_byte < total:
            self.timer = self.loop.call_at(now + first_byte, self._no_first_byte, first_byte)
        else:
            self.timer = self.loop.call_at(self.deadline, self._deadline_passed)

    def _no_first_byte(self, first_byte: float) -> None:
        self._fail(UpstreamTimedOut(f"sent no data within {first_byte:g}s"))

    def _deadline_passed(self) -> None:
        self._fail(UpstreamTimedOut("did not finish its answer in time"))

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.complete:  # bytes on an idle connection: it cannot be trusted with another call
            self.abort()
            return
        self.started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamClosed(f"malformed answer: {exc}"))
            return
        if self.pieces and not self.body_seen:
            self.body_seen = True
            self._rearm()
        if self.buffered > _PAUSE_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self.error is not None:
            return
        if self.head.done() and not self.framed:  # a body that ends when the connection does
            self.on_message_complete()
            return
        self._fail(UpstreamClosed(f"connection closed: {exc}" if exc else "connection closed"))

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length" or lower == b"transfer-encoding":
            self.framed = True
        elif lower == b"content-encoding":
            self.encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.status in (204, 304):
            self.framed = True
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self._stop_timer()
        if not self.head.done():
            self.head.set_result(None)
        self._wake()

    # -- reading ---------------------------------------------------------------------------

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _rearm(self) -> None:
        self._stop_timer()
        if not self.complete:
            self.timer = self.loop.call_at(self.deadline, self._deadline_passed)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        self._stop_timer()
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: a failure nobody awaited is not worth a warning
        self._wake()
        self.abort()

    def abort(self) -> None:
        self.closed = True
        self._stop_timer()
        if self.transport is not None:
            self.transport.abort()

    async def piece(self) -> bytes | None:
        """The body received since the last call (waiting for some), ``None`` at its end."""
        while True:
            pieces = self.pieces
            if pieces:
                data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                pieces.clear()
                self.buffered = 0
                if self.paused and self.transport is not None:
                    self.paused = False
                    self.transport.resume_reading()
                return data
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self.waiter = self.loop.create_future()
            await self.waiter
            self.waiter = None


class Response:
    """An answer whose head has arrived; read its body with :meth:`read` or :meth:`piece`,
    then :meth:`release` it (or :meth:`close` it to abandon the rest)."""

    __slots__ = ("_conn", "_decoder", "_pool", "_origin", "status")

    def __init__(self, pool: UpstreamPool, origin: _Origin, conn: _Connection) -> None:
        self._pool = pool
        self._origin = origin
        self._conn: _Connection | None = conn
        self.status = conn.status
        encoding = conn.encoding
        self._decoder = None
        if encoding in (b"gzip", b"x-gzip", b"deflate"):
            self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # a gzip or zlib header
        elif encoding not in (b"", b"identity"):
            self.close()
            name = encoding.decode("latin-1")
            raise UpstreamUndecodable(f"unsupported content-encoding {name!r}")

    @property
    def headers(self) -> dict[str, str]:
        """The answer's headers, names in lower case (a repeated one: its last value)."""
        conn = self._conn
        raw = conn.raw_headers if conn is not None else []
        return {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in raw}

    async def piece(self) -> bytes | None:
        """The body as it arrives, one piece per socket read; ``None`` at its end."""
        conn = self._conn
        if conn is None:
            return None
        data = await conn.piece()
        if self._decoder is not None:
            if data is None:
                rest = self._decoder.flush()
                self._decoder = None
                return rest or None
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise UpstreamClosed(f"malformed compressed answer: {exc}") from None
        return data

    @property
    def ended(self) -> bool:
        """Whether the next :meth:`piece` will say the body has ended without waiting: it all
        arrived, and all of it has been read (not told for a compressed answer)."""
        conn = self._conn
        if conn is None:
            return True
        return conn.complete and not conn.pieces and self._decoder is None

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while (data := await self.piece()) is not None:
            parts.append(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """Done with the answer: a connection whose answer was read to the end goes back to
        the pool, any other is closed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._give_back(self._origin, conn)

    def close(self) -> None:
        """Abandon the answer: its connection is closed (an upstream stops generating)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()
            self._pool._give_back(self._origin, conn)


class UpstreamPool:
    """Keep-alive connections to the providers, shared by all of them."""

    def __init__(
        self,
        limit_per_host: int = 256,
        keepalive: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        """``ssl_context``: for https origins; by default the system's trusted authorities
        (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name others, as for Python's ``ssl``).
        ``proxies``: outbound proxies (``Proxies.from_env``); none by default."""
        self.limit_per_host = limit_per_host
        self.proxies = proxies or Proxies()
        self._via: dict[_Origin, Proxy | None] = {}
        self.keepalive = keepalive
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._slots: dict[_Origin, asyncio.Semaphore] = {}
        self._ssl = ssl_context
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        connect: float,
        first_byte: float,
        total: float,
    ) -> Response:
        """Send a request and wait for the head of its answer (any status)."""
        if self._closed:
            raise RuntimeError("the upstream pool is closed")
        split = _split(url)
        origin = split[0]
        if origin in self._via:
            via = self._via[origin]
        else:
            via = self._via[origin] = self.proxies.choose(origin.scheme, origin.host, origin.port)
        plain_proxy = via if origin.scheme == "http" else None
        head = _head(method, split, headers, None if body is None else len(body), plain_proxy)
        data = head + body if body else head
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self.limit_per_host)
        await slots.acquire()
        try:
            conn = await self._answered(origin, data, connect, first_byte, total)
        except BaseException:
            slots.release()
            raise
        return Response(self, origin, conn)

    async def _answered(
        self, origin: _Origin, data: bytes, connect: float, first_byte: float, total: float
    ) -> _Connection:
        conn = self._reused(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, data, first_byte, total)
            except UpstreamClosed:
                if conn.started:  # part of an answer came: not a connection gone stale
                    raise
                # closed by the upstream while it sat idle: once more on a new connection
        conn = await self._connect(origin, connect)
        return await self._exchange(conn, data, first_byte, total)

    @staticmethod
    async def _exchange(
        conn: _Connection, data: bytes, first_byte: float, total: float
    ) -> _Connection:
        conn.send(data, first_byte, total)
        try:
            await conn.head
        except BaseException:
            conn.abort()
            raise
        return conn

    def _reused(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive:
                return conn
            conn.abort()
        return None

    async def _connect(self, origin: _Origin, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        via = self._via.get(origin)
        try:
            async with asyncio.timeout(timeout):
                if via is None:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop), origin.host, origin.port, ssl=context,
                        server_hostname=origin.host if context else None,
                    )  # fmt: skip
                elif context is None:  # http: the proxy is asked with the full URL
                    _, conn = await loop.create_connection(lambda: _Connection(loop), via.host,
                                                           via.port)  # fmt: skip
                else:  # https: TLS to the origin inside a CONNECT tunnel
                    sock = await open_tunnel(via, origin.host, origin.port, loop)
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop), sock=sock, ssl=context,
                        server_hostname=origin.host,
                    )  # fmt: skip
        except TimeoutError:
            raise UpstreamTimedOut(f"could not connect within {timeout:g}s") from None
        return conn

    def _give_back(self, origin: _Origin, conn: _Connection) -> None:
        self._slots[origin].release()
        if conn.complete and conn.keep_alive and not conn.closed and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(origin, []).append(conn)
        else:
            conn.abort()

    async def close(self) -> None:
        """Close the idle connections; the ones in use close when their answers are done."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
