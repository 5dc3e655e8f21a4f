"""A lean Redis client for the request path: RESP2 on one pipelined connection.

redis-py's asyncio client spent ~0.15 ms of CPU per command here — a connection pool with its
locks, an asyncio timeout, a retry wrapper and observability hooks around every call — and a
request's counters take six or seven round trips (rate-limit windows, the budget reservation,
its settlement, the token windows), so Redis counters cost ~3.5× the CPU of in-process ones
(``benchmarks/NOTES.md``, row 41). This client writes each command the moment it is called and
hands out the replies in order (Redis answers a connection's commands in the order they came),
so a call is one ``write`` and one future: no pool, no lock, no task, no timer of its own.

* URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS, checked against
  the system's authorities, which ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace) and
  ``unix:///path/to.sock[?db=N]``; ``?password=`` also works.
* The connection opens on first use and again after it broke; commands in flight when it
  breaks fail with :class:`ConnectionError` (they may or may not have run).
* A command unanswered after ``timeout`` seconds fails with :class:`TimeoutError`, and so do the
  ones behind it: the connection is dropped, since its replies can no longer be matched.
  One timer per connection checks the oldest command, not one per command.
* Error replies raise :class:`RedisReplyError`; bulk strings come back as ``bytes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Redis", "RedisReplyError", "Script"]

Arg = str | bytes | int


class RedisReplyError(Exception):
    """An error reply from Redis (``-ERR …``, ``-NOSCRIPT …``, a script's ``error_reply``)."""


class _Incomplete:
    """More bytes are needed to parse a whole reply."""


_INCOMPLETE = _Incomplete()


def _parse(buf: bytes, pos: int) -> tuple[Any, int] | _Incomplete:
    """One RESP2 reply starting at ``pos``: (the value, where the next one starts)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE
    kind, line, after = buf[pos], buf[pos + 1 : end], end + 2
    if kind == 58:  # ':' integer
        return int(line), after
    if kind == 36:  # '$' bulk string
        size = int(line)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return _INCOMPLETE
        return buf[after : after + size], after + size + 2
    if kind == 43:  # '+' simple string
        return line.decode(), after
    if kind == 45:  # '-' error
        return RedisReplyError(line.decode(errors="replace")), after
    if kind == 42:  # '*' array
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            parsed = _parse(buf, after)
            if isinstance(parsed, _Incomplete):
                return _INCOMPLETE
            item, after = parsed
            items.append(item)
        return items, after
    raise ConnectionError(f"Redis sent a reply this client does not read: {buf[pos:end]!r}")


def _pack(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One connection: commands go out as they come, replies resolve futures in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.buffer = b""
        self.broken: BaseException | None = None
        self.watch: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.broken is not None or self.transport is None:
            raise ConnectionError(f"the Redis connection is closed: {self.broken}")
        future = self.loop.create_future()
        self.waiting.append((future, self.loop.time()))
        self.transport.write(packed)
        if self.watch is None:
            self.watch = self.loop.call_later(self.timeout, self._check)
        return future

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pos, waiting = 0, self.waiting
        while pos < len(buf):
            try:
                parsed = _parse(buf, pos)
            except (ConnectionError, ValueError) as exc:
                self._fail(ConnectionError(f"unreadable Redis reply: {exc}"))
                return
            if isinstance(parsed, _Incomplete):
                break
            reply, pos = parsed
            if not waiting:
                self._fail(ConnectionError("Redis sent a reply nobody asked for"))
                return
            future, _ = waiting.popleft()
            if not future.done():
                future.set_result(reply)
        self.buffer = buf[pos:]

    def _check(self) -> None:
        """The oldest command has had ``timeout`` seconds, or look again when it will have."""
        self.watch = None
        if not self.waiting:
            return
        due = self.waiting[0][1] + self.timeout
        if self.loop.time() >= due:
            self._fail(TimeoutError(f"Redis did not answer within {self.timeout:g} s"))
        else:
            self.watch = self.loop.call_at(due, self._check)

    def _fail(self, exc: BaseException) -> None:
        if self.broken is None:
            self.broken = exc
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.broken)
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the Redis connection closed: {exc or 'by the server'}"))


class Redis:
    """A client for one Redis server; see the module's docstring. Connects on first use."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        *,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: bool | ssl.SSLContext = False,
        timeout: float = 5.0,
    ) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password, self.tls, self.timeout = username, password, tls, timeout
        self._conn: _Connection | None = None
        self._opening: asyncio.Lock | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> Redis:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        password = unquote(parts.password) if parts.password else query.get("password")
        username = unquote(parts.username) if parts.username else None
        if parts.scheme == "unix":
            return cls(path=unquote(parts.path), db=int(query.get("db", "0")), username=username,
                       password=password, timeout=timeout)  # fmt: skip
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {parts.scheme}://")
        db = int(parts.path.strip("/") or query.get("db", "0"))
        return cls(parts.hostname or "127.0.0.1", parts.port or 6379, db=db, username=username,
                   password=password, tls=parts.scheme == "rediss", timeout=timeout)  # fmt: skip

    async def execute(self, *args: Arg) -> Any:
        """Send one command and return its reply (raises :class:`RedisReplyError` for an error
        reply)."""
        conn = self._conn
        if conn is None or conn.broken is not None:
            conn = await self._connect()
        reply = await conn.send(_pack(args))
        if isinstance(reply, RedisReplyError):
            raise RedisReplyError(*reply.args)
        return reply

    async def many(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Several commands in one write; their replies (the first error reply raises)."""
        conn = self._conn
        if conn is None or conn.broken is not None:
            conn = await self._connect()
        futures = [conn.send(_pack(command)) for command in commands]
        replies = [await future for future in futures]
        for reply in replies:
            if isinstance(reply, RedisReplyError):
                raise RedisReplyError(*reply.args)
        return replies

    def script(self, source: str) -> Script:
        return Script(self, source)

    async def _connect(self) -> _Connection:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # callers that found no connection wait for one attempt
            if self._conn is not None and self._conn.broken is None:
                return self._conn
            loop = asyncio.get_running_loop()
            conn = _Connection(loop, self.timeout)
            async with asyncio.timeout(self.timeout):
                if self.path is not None:
                    await loop.create_unix_connection(lambda: conn, self.path)
                else:
                    tls = self.tls
                    context = ssl.create_default_context() if tls is True else tls or None
                    await loop.create_connection(lambda: conn, self.host, self.port, ssl=context)
                hello: list[list[Arg]] = []
                if self.password is not None:
                    user = [] if self.username is None else [self.username]
                    hello.append(["AUTH", *user, self.password])
                if self.db:
                    hello.append(["SELECT", self.db])
                sent = [conn.send(_pack(command)) for command in hello]  # in one go
                for reply in [await future for future in sent]:
                    if isinstance(reply, RedisReplyError):
                        conn._fail(ConnectionError(f"Redis refused the connection: {reply}"))
                        raise RedisReplyError(*reply.args)
            self._conn = conn
            return conn

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn._fail(ConnectionError("the client was closed"))
            self._conn = None


class Script:
    """A Lua script run by its SHA1 (``EVALSHA``); sent whole (``EVAL``, which also stores it)
    when the server does not know it yet, e.g. after a restart or ``SCRIPT FLUSH``."""

    def __init__(self, client: Redis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        try:
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.client.execute("EVAL", self.source, len(keys), *keys, *args)
