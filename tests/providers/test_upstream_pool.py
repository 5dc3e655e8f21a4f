"""The upstream HTTP/1.1 client against raw socket servers that write exact bytes: framing,
keep-alive, stale connections, timeouts, compression, TLS, limits; on asyncio's own event loop
and on uvloop (the one ``meterline serve`` runs)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from meterline.errors import (
    ProviderError,
    UpstreamConnectionError,
    UpstreamMalformed,
    UpstreamUnavailable,
)
from meterline.providers.http import HttpClient, UpstreamCall
from meterline.providers.upstream import UpstreamClosed, UpstreamPool, UpstreamTimedOut
from meterline.settings import RetrySettings, TimeoutSettings

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

TIMES = {"connect": 2.0, "first_byte": 2.0, "total": 5.0}


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return asyncio.run if request.param == "asyncio" else uvloop.run  # type: ignore[no-any-return]


class Server:
    """A loopback server; ``handler`` answers each connection; connections are counted."""

    def __init__(self, handler: Handler, context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.context = context
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> str:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=self.context)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.context else 'http'}://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def answer(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"".join(extra)
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


def keep_answering(server_of: Callable[[], Server], reply: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server_of().read_request(reader)
            writer.write(reply)
            await writer.drain()

    return handler


def test_content_length_answers_reuse_one_connection(run: Any) -> None:
    server: Server

    async def main() -> list[bytes]:
        nonlocal server
        server = Server(keep_answering(lambda: server, answer(b'{"ok":true}', b"x-id: 7\r\n")))
        pool = UpstreamPool()
        bodies = []
        async with server as base:
            for _ in range(3):
                response = await pool.request("POST", f"{base}/v1/chat?x=1",
                                              {"authorization": "Bearer k"}, b'{"q":1}', **TIMES)  # fmt: skip
                assert response.status == 200
                assert response.headers["x-id"] == "7"
                bodies.append(await response.read())
                response.release()
        await pool.close()
        return bodies

    assert run(main()) == [b'{"ok":true}'] * 3
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\naccept-encoding: gzip, deflate\r\n" in first  # only what it can decode
    assert b'\r\nauthorization: Bearer k\r\ncontent-length: 7\r\n\r\n{"q":1}' in first


def test_chunked_answer_arrives_a_piece_per_read(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()  # until the client hangs up

    server = Server(handler)

    async def main() -> list[bytes]:
        pool = UpstreamPool()
        async with server as base:
            response = await pool.request("GET", base + "/stream", {}, None, **TIMES)
            pieces = []
            while (piece := await response.piece()) is not None:
                pieces.append(piece)
            response.release()
        await pool.close()
        return pieces

    assert run(main()) == [b"hello", b" world"]
    assert b"content-length" not in server.requests[0]


def test_ended_tells_whether_the_next_piece_would_wait(run: Any) -> None:
    """``ended``: the body's end has arrived and everything before it has been read; never
    for a compressed answer, whose decoder may still hold bytes back."""
    pieces = [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
              b"6\r\n world\r\n0\r\n\r\n"]  # fmt: skip
    packed = gzip.compress(b"zipped")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.2)
        await server.read_request(reader)
        writer.write(answer(packed, b"content-encoding: gzip\r\n"))
        await writer.drain()
        await reader.read()

    server = Server(handler)

    async def main() -> list[tuple[bytes | None, bool]]:
        pool = UpstreamPool()
        seen = []
        async with server as base:
            for _ in range(2):
                response = await pool.request("GET", base, {}, None, **TIMES)
                while True:
                    piece = await response.piece()
                    seen.append((piece, response.ended))
                    if piece is None:
                        break
                response.release()
        await pool.close()
        return seen

    assert run(main()) == [
        (b"hello", False),  # the rest of the body is still to come
        (b" world", True),  # its end came in the same read
        (None, True),
        (b"zipped", False),  # compressed: not told
        (None, True),
    ]


def test_body_read_until_the_connection_closes(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()

    server = Server(handler)

    async def main() -> bytes:
        pool = UpstreamPool()
        async with server as base:
            response = await pool.request("GET", base, {}, None, **TIMES)
            body = await response.read()
            response.release()
            assert not pool._idle.get(next(iter(pool._slots)))  # not kept: it closed
        await pool.close()
        return body

    assert run(main()) == b"all of it"


def test_gzip_answer_is_decoded_and_unknown_encodings_refused(run: Any) -> None:
    packed = gzip.compress(b'{"text":"' + b"a" * 5000 + b'"}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(packed, b"content-encoding: gzip\r\n"))
        await server.read_request(reader)
        writer.write(answer(b"xx", b"content-encoding: br\r\n"))
        await writer.drain()
        await reader.read()

    server = Server(handler)

    async def main() -> tuple[bytes, str]:
        pool = UpstreamPool()
        async with server as base:
            response = await pool.request("GET", base, {}, None, **TIMES)
            body = await response.read()
            response.release()
            with pytest.raises(UpstreamClosed) as refused:
                await pool.request("GET", base, {}, None, **TIMES)
        await pool.close()
        return body, str(refused.value)

    body, refusal = run(main())
    assert body == b'{"text":"' + b"a" * 5000 + b'"}'
    assert "unsupported content-encoding 'br'" in refusal


def test_connection_closed_while_idle_is_replaced(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(b"one"))
        await writer.drain()
        await reader.read(1)  # the next request's first byte arrives, then: gone without a word

    server = Server(handler)

    async def main() -> list[bytes]:
        pool = UpstreamPool()
        bodies = []
        async with server as base:
            for _ in range(2):
                response = await pool.request("POST", base, {}, b"{}", **TIMES)
                bodies.append(await response.read())
                response.release()
        await pool.close()
        return bodies

    assert run(main()) == [b"one", b"one"]
    assert server.connections == 2


def test_answer_broken_off_midway(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    server = Server(handler)

    async def main() -> tuple[bytes, str]:
        pool = UpstreamPool()
        async with server as base:
            response = await pool.request("GET", base, {}, None, **TIMES)
            first = await response.piece()
            with pytest.raises(UpstreamClosed) as broken:
                await response.piece()
            response.close()
        await pool.close()
        return first or b"", str(broken.value)

    first, error = run(main())
    assert first == b"only part"
    assert "connection closed" in error


def test_first_byte_and_total_timeouts(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await server.read_request(reader)
        if b"/silent" in request:
            await asyncio.sleep(5)
            return
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    server = Server(handler)

    async def main() -> tuple[str, bytes, str]:
        pool = UpstreamPool()
        async with server as base:
            with pytest.raises(UpstreamTimedOut) as silent:
                await pool.request("GET", base + "/silent", {}, None, connect=1, first_byte=0.2,
                                   total=5)  # fmt: skip
            response = await pool.request("GET", base + "/slow", {}, None, connect=1,
                                          first_byte=0.2, total=0.5)  # fmt: skip
            first = await response.piece() or b""
            with pytest.raises(UpstreamTimedOut) as slow:
                await response.piece()
            response.close()
        await pool.close()
        return str(silent.value), first, str(slow.value)

    silent, first, slow = run(main())
    assert silent == "sent no data within 0.2s"
    assert first == b"hi"
    assert slow == "did not finish its answer in time"


def test_malformed_answer_and_unreachable_upstream(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await reader.read()

    server = Server(handler)

    async def main() -> str:
        pool = UpstreamPool()
        async with server as base:
            with pytest.raises(UpstreamClosed) as malformed:
                await pool.request("GET", base, {}, None, **TIMES)
        with pytest.raises(OSError):  # the server is gone: nothing listens on its port
            await pool.request("GET", base, {}, None, **TIMES)
        await pool.close()
        return str(malformed.value)

    assert run(main()).startswith("malformed answer")


def test_header_with_a_line_break_is_refused() -> None:
    async def main() -> None:
        pool = UpstreamPool()
        await pool.request("GET", "http://127.0.0.1:9/", {"x-evil": "a\r\nhost: b"}, None, **TIMES)

    with pytest.raises(ValueError, match="line break"):
        asyncio.run(main())


def test_abandoned_answer_closes_its_connection_and_limit_is_kept(run: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"cd")
            await writer.drain()

    server = Server(handler)

    async def main() -> tuple[bool, bytes]:
        pool = UpstreamPool(limit_per_host=1)
        async with server as base:
            first = await pool.request("GET", base, {}, None, **TIMES)
            second = asyncio.ensure_future(pool.request("GET", base, {}, None, **TIMES))
            await asyncio.sleep(0.3)
            waited = not second.done()  # the one connection allowed is taken
            first.close()  # abandoned midway: closed, not reused
            response = await second
            body = await response.read()
            response.release()
        await pool.close()
        return waited, body

    waited, body = run(main())
    assert waited
    assert body == b"abcd"
    assert server.connections == 2


def self_signed(folder: Path, name: str, alt_name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (``alt_name``: ``IP:…`` or ``DNS:…``) and its key."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1", "IP:127.0.0.1")


def test_https_with_a_trusted_authority(run: Any, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    server: Server
    server = Server(keep_answering(lambda: server, answer(b"secret")), served)

    async def main() -> tuple[bytes, str]:
        trusting = UpstreamPool(ssl_context=ssl.create_default_context(cafile=str(cert)))
        default = UpstreamPool()  # the system's authorities do not know this certificate
        async with server as base:
            response = await trusting.request("GET", base + "/x", {}, None, **TIMES)
            body = await response.read()
            response.release()
            with pytest.raises(ssl.SSLError) as untrusted:
                await default.request("GET", base + "/x", {}, None, **TIMES)
        await trusting.close()
        await default.close()
        return body, str(untrusted.value)

    body, error = run(main())
    assert body == b"secret"
    assert "CERTIFICATE_VERIFY_FAILED" in error
    assert server.requests[0].startswith(b"GET /x HTTP/1.1\r\nhost: 127.0.0.1:")


def _client(pool: UpstreamPool) -> HttpClient:
    """An ``HttpClient`` over ``pool`` that tries each call twice, quickly."""
    return HttpClient(pool, "acme", RetrySettings(max_attempts=2, backoff_initial=0.01),
                      TimeoutSettings(), lambda *a: UpstreamUnavailable("x"))  # fmt: skip


def _send(reply: Callable[[int], bytes], *, then_close: bool = False) -> tuple[Any, Server]:
    """One call through :func:`_client` to a server that answers its n-th request with
    ``reply(n)`` (and closes the connection after it with ``then_close``): the body, or the
    error the call raised, and the server."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(reply(len(server.requests)))
        await writer.drain()
        if not then_close:
            await reader.read()

    server = Server(handler)

    async def main() -> Any:
        pool = UpstreamPool()
        try:
            async with server as base:
                return await _client(pool).send(UpstreamCall("POST", base + "/v1/x", {}, b"{}"))
        except ProviderError as exc:
            return exc
        finally:
            await pool.close()

    return asyncio.run(main()), server


def test_http_client_names_an_answer_cut_off_after_its_head() -> None:
    cut = b'HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{"cut'
    error, server = _send(lambda n: cut, then_close=True)
    assert isinstance(error, UpstreamConnectionError)
    assert str(error) == "acme failed to answer: connection closed"
    # not retried: the upstream answered (and may have billed) before it broke off
    assert len(server.requests) == 1


def test_http_client_retries_a_garbled_head() -> None:
    body, server = _send(lambda n: b"NOT HTTP\r\n\r\n" if n == 1 else answer(b"{}"))
    assert body == b"{}"
    assert len(server.requests) == 2  # the first answer was garbled: sent again


def test_http_client_does_not_retry_an_answer_it_cannot_decode() -> None:
    """An unknown content-encoding comes back the same every time: one attempt, a 502 that
    names it (a fallback chain may still try another model)."""
    error, server = _send(lambda n: answer(b"xx", b"content-encoding: zstd\r\n"))
    assert isinstance(error, UpstreamMalformed)
    assert str(error) == "acme answered with an unsupported content-encoding 'zstd'"
    assert (error.status, error.retryable) == (502, True)
    assert len(server.requests) == 1


def test_large_answer_read_slowly_arrives_whole(run: Any) -> None:
    body = bytes(range(256)) * 16 * 1024  # 4 MiB: the socket is paused past 1 MiB unread

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)
        writer.write(answer(body))
        await writer.drain()
        await reader.read()

    server = Server(handler)

    async def main() -> tuple[bytes, bool]:
        pool = UpstreamPool()
        paused = False
        async with server as base:
            response = await pool.request("GET", base, {}, None, **TIMES)
            await asyncio.sleep(0.2)  # let it pile up before reading anything
            conn = response._conn
            paused = conn is not None and conn.paused
            received = await response.read()
            response.release()
        await pool.close()
        return received, paused

    received, paused = run(main())
    assert paused
    assert received == body
