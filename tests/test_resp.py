"""The lean Redis client (``meterline.resp``): against the real Redis on asyncio's loop and on
uvloop, and against raw socket servers for what a healthy Redis never does (split replies,
silence, a refused login, TLS, a unix socket)."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvloop

from meterline.resp import Redis, RedisReplyError
from tests.providers.test_upstream_pool import self_signed

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return asyncio.run if request.param == "asyncio" else uvloop.run


def test_commands_and_replies_of_each_kind(run: Any) -> None:
    key = f"resp-test:{secrets.token_hex(4)}"

    async def main() -> list[Any]:
        client = Redis.from_url(REDIS_URL)
        try:
            got = [await client.execute("PING"), await client.execute("SET", key, b"a\r\nb")]
            got += [await client.execute("GET", key), await client.execute("GET", key + ":none")]
            got.append(await client.execute("HSET", key + ":h", "x", 7))
            got.append(await client.execute("HMGET", key + ":h", "x", "y"))
            with pytest.raises(RedisReplyError, match="WRONGTYPE"):
                await client.execute("INCR", key + ":h")
            got.append(await client.execute("DEL", key, key + ":h"))
            return got
        finally:
            await client.aclose()

    assert run(main()) == ["PONG", "OK", b"a\r\nb", None, 1, [b"7", None], 2]


def test_concurrent_calls_share_one_connection_and_get_their_own_replies(run: Any) -> None:
    key = f"resp-test:{secrets.token_hex(4)}"

    async def main() -> tuple[list[Any], list[Any], int]:
        client = Redis.from_url(REDIS_URL)
        try:
            counts = await asyncio.gather(*[client.execute("INCR", key) for _ in range(200)])
            many = await client.many([("INCRBY", key, 10), ("GET", key), ("DEL", key)])
            clients = await client.execute("CLIENT", "LIST", "TYPE", "normal")
            mine = await client.execute("CLIENT", "ID")
            return counts, many, clients.count(b"id=%d " % mine)
        finally:
            await client.aclose()

    counts, many, connections = run(main())
    assert counts == list(range(1, 201))  # in the order they were asked
    assert many == [210, b"210", 1]
    assert connections == 1


def test_a_script_is_sent_whole_when_redis_does_not_know_it(run: Any) -> None:
    source = f"return {{KEYS[1], ARGV[1], '{secrets.token_hex(4)}'}}"  # new to this Redis

    async def main() -> list[Any]:
        client = Redis.from_url(REDIS_URL)
        try:
            script = client.script(source)
            first = await script(["k"], [1])  # NOSCRIPT, then EVAL, which stores it
            known = await client.execute("SCRIPT", "EXISTS", script.sha)
            second = await script(["k"], [2])
            with pytest.raises(RedisReplyError, match="boom"):
                await client.script("return redis.error_reply('boom')")([], [])
            return [first[:2], known, second[:2]]
        finally:
            await client.aclose()

    assert run(main()) == [[b"k", b"1"], [1], [b"k", b"2"]]


def test_a_connection_killed_by_the_server_is_replaced(run: Any) -> None:
    async def main() -> tuple[str, int, int]:
        client = Redis.from_url(REDIS_URL)
        raw = aioredis.from_url(REDIS_URL)
        try:
            before = await client.execute("CLIENT", "ID")
            await raw.client_kill_filter(_id=before)
            await asyncio.sleep(0.05)  # the close reaches the client
            pong = await client.execute("PING")
            return pong, before, await client.execute("CLIENT", "ID")
        finally:
            await client.aclose()
            await raw.aclose()

    pong, before, after = run(main())
    assert pong == "PONG" and after != before


def test_the_database_of_the_url_is_selected(run: Any) -> None:
    key = f"resp-test:{secrets.token_hex(4)}"

    async def main() -> tuple[Any, Any]:
        client = Redis.from_url("redis://127.0.0.1:6379/3")
        raw = aioredis.from_url("redis://127.0.0.1:6379/3")
        try:
            await client.execute("SET", key, "in 3")
            return await raw.get(key), await raw.delete(key)
        finally:
            await client.aclose()
            await raw.aclose()

    assert run(main()) == (b"in 3", 1)


class Fake:
    """A loopback (or unix-socket, or TLS) server that records the commands it reads. Each
    connection goes through ``steps``: read so many commands, then write that reply (a byte at a
    time with ``split``); then it waits for the client to leave."""

    def __init__(self, steps: list[tuple[int, bytes]], *, split: bool = False,
                 path: Path | None = None, context: ssl.SSLContext | None = None) -> None:  # fmt: skip
        self.steps, self.split, self.path, self.context = steps, split, path, context
        self.received = b""
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for count, reply in self.steps:
            await self.read(reader, count)
            for piece in [reply[i : i + 1] for i in range(len(reply))] if self.split else [reply]:
                writer.write(piece)
                await writer.drain()
        await reader.read()

    async def __aenter__(self) -> int:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.serve(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        if self.path is not None:
            self.server = await asyncio.start_unix_server(accept, str(self.path))
            return 0
        self.server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=self.context)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def read(self, reader: asyncio.StreamReader, count: int) -> None:
        """Read ``count`` commands (their whole RESP arrays)."""
        for _ in range(count):
            head = await reader.readline()
            self.received += head
            for _ in range(int(head[1:])):
                size = await reader.readline()
                self.received += size + await reader.readexactly(int(size[1:]) + 2)


def _ask(run: Any, fake: Fake, client_for: Callable[[int], Redis], *command: Any) -> Any:
    """``command`` sent through the client ``client_for(port)`` makes: its reply, or the
    exception it raised."""

    async def main() -> Any:
        async with fake as port:
            client = client_for(port)
            try:
                return await client.execute(*command)
            except (RedisReplyError, OSError) as exc:
                return exc
            finally:
                await client.aclose()

    return run(main())


def test_replies_split_anywhere_are_put_together(run: Any) -> None:
    reply = b"*3\r\n$5\r\nhello\r\n:42\r\n*2\r\n$-1\r\n+OK\r\n" + b"$3\r\nend\r\n"
    fake = Fake([(2, reply)], split=True)

    async def main() -> list[Any]:
        async with fake as port:
            client = Redis(port=port)
            try:
                return await client.many([("GET", "a"), ("GET", "b")])
            finally:
                await client.aclose()

    assert run(main()) == [[b"hello", 42, [None, "OK"]], b"end"]
    assert fake.received == b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"


def test_a_silent_server_times_out_and_the_next_call_reconnects(run: Any) -> None:
    fake = Fake([(1, b"+PONG\r\n")])
    answering = fake.serve

    async def first_connection_silent(reader: asyncio.StreamReader,
                                      writer: asyncio.StreamWriter) -> None:  # fmt: skip
        if fake.connections == 1:
            await fake.read(reader, 1)
            await reader.read()
        else:
            await answering(reader, writer)

    fake.serve = first_connection_silent  # type: ignore[method-assign]

    async def main() -> tuple[Any, str]:
        async with fake as port:
            client = Redis(port=port, timeout=0.2)
            try:
                first = client.execute("PING")
                behind = client.execute("PING")  # waits behind the first: fails with it
                errors = await asyncio.gather(first, behind, return_exceptions=True)
                return errors, await client.execute("PING")
            finally:
                await client.aclose()

    errors, pong = run(main())
    assert [type(e) for e in errors] == [TimeoutError, TimeoutError]
    assert pong == "PONG" and fake.connections == 2


def test_login_and_database_from_the_url(run: Any) -> None:
    fake = Fake([(2, b"+OK\r\n+OK\r\n"), (1, b"+PONG\r\n")])  # the login comes first
    url = "redis://app:p%40ss@127.0.0.1:{}/2"
    assert _ask(run, fake, lambda port: Redis.from_url(url.format(port)), "PING") == "PONG"
    assert fake.received == (b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$4\r\np@ss\r\n"
                             b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*1\r\n$4\r\nPING\r\n")  # fmt: skip


def test_a_refused_login_fails_the_call(run: Any) -> None:
    fake = Fake([(1, b"-WRONGPASS invalid username-password pair\r\n")])
    url = "redis://:nope@127.0.0.1:{}"
    error = _ask(run, fake, lambda port: Redis.from_url(url.format(port)), "PING")
    assert isinstance(error, RedisReplyError) and str(error).startswith("WRONGPASS")
    assert fake.received == b"*2\r\n$4\r\nAUTH\r\n$4\r\nnope\r\n"


def test_a_unix_socket(run: Any, tmp_path: Path) -> None:
    fake = Fake([(1, b"+PONG\r\n")], path=tmp_path / "redis.sock")
    url = f"unix://{tmp_path / 'redis.sock'}"
    assert _ask(run, fake, lambda port: Redis.from_url(url), "PING") == "PONG"


def test_tls_checks_the_servers_certificate(run: Any, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "127.0.0.1", "IP:127.0.0.1")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    fake = Fake([(1, b"+PONG\r\n")], context=served)
    assert _ask(run, fake, lambda port: Redis(port=port, tls=trusted), "PING") == "PONG"
    # rediss:// checks against the system's authorities, which do not know this certificate
    error = _ask(run, fake, lambda port: Redis.from_url(f"rediss://127.0.0.1:{port}"), "PING")
    assert isinstance(error, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(error)


def test_urls_it_does_not_speak_are_refused() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        Redis.from_url("http://127.0.0.1:6379")
