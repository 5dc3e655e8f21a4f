"""Outbound proxies: which calls take one (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
``NO_PROXY``, as curl, requests and httpx read them), and the upstream client through a fake
proxy that tunnels ``CONNECT`` and forwards full-URL requests, on asyncio's loop and uvloop.

The providers' host name (``api.example.test``) is known only to the fake proxy, which maps it
to a loopback server: a call that skipped the proxy could not resolve it."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from meterline.errors import UpstreamConnectionError
from meterline.gateway import Gateway
from meterline.providers.http import HttpClient, UpstreamCall
from meterline.providers.proxy import Proxies, Proxy, ProxyRefused
from meterline.providers.upstream import UpstreamPool
from meterline.settings import ConfigError, RetrySettings, Settings, TimeoutSettings
from tests.providers.test_upstream_pool import (
    TIMES,
    Server,
    answer,
    keep_answering,
    run,
    self_signed,
)

__all__ = ["run"]  # the asyncio / uvloop fixture

HOST = "api.example.test"
AUTH = "Basic dXNlcjpwQHNz"  # user:p@ss


# -- which calls take a proxy ------------------------------------------------------------------


def test_proxies_are_chosen_per_scheme_like_curl_and_httpx() -> None:
    env = {"HTTPS_PROXY": "http://corp:3128", "http_proxy": "proxy.lan:8080",
           "HTTP_PROXY": "http://ignored:1"}  # fmt: skip
    proxies = Proxies.from_env(env)
    assert proxies.choose("https", HOST, 443) == Proxy("corp", 3128, None)
    assert proxies.choose("http", HOST, 80) == Proxy("proxy.lan", 8080, None)  # lower case wins
    only_all = Proxies.from_env({"ALL_PROXY": "http://user:p%40ss@all:9"})
    assert only_all.choose("https", HOST, 443) == Proxy("all", 9, AUTH)
    assert only_all.choose("http", HOST, 80) == Proxy("all", 9, AUTH)
    assert not Proxies.from_env({})
    assert Proxies.from_env({}).choose("https", HOST, 443) is None


@pytest.mark.parametrize(
    ("host", "port", "direct"),
    [
        ("api.openai.com", 443, True),  # NO_PROXY suffix
        ("openai.com", 443, True),
        ("notopenai.com", 443, False),  # a suffix, not a substring
        ("internal.corp", 443, True),  # leading dot
        ("models.lan", 8443, True),  # with its port
        ("models.lan", 443, False),  # another port
        ("10.1.2.3", 443, True),  # in the network
        ("11.0.0.1", 443, False),
        ("::1", 443, True),  # loopback: always direct
        ("localhost", 11434, True),
        ("127.0.0.1", 8000, True),
        ("api.anthropic.com", 443, False),
    ],
)
def test_no_proxy_and_loopback_go_direct(host: str, port: int, direct: bool) -> None:
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://corp:3128",
                                "NO_PROXY": "openai.com, .corp,models.lan:8443,10.0.0.0/8"})  # fmt: skip
    assert (proxies.choose("https", host, port) is None) is direct


def test_no_proxy_star_turns_the_proxy_off() -> None:
    proxies = Proxies.from_env({"HTTPS_PROXY": "http://corp:3128", "no_proxy": "*"})
    assert proxies.choose("https", HOST, 443) is None


def test_a_proxy_the_gateway_cannot_speak_stops_start_up() -> None:
    with pytest.raises(ConfigError) as refused:
        Gateway(Settings(), {"HTTPS_PROXY": "socks5://corp:1080"})
    assert "HTTPS_PROXY" in str(refused.value) and "only http:// proxies" in str(refused.value)


# -- calls through a proxy ---------------------------------------------------------------------


class FakeProxy:
    """``CONNECT host:port`` opens a tunnel; any other request (full URL as its target) is
    forwarded as it is. ``routes`` maps ``host:port`` to a loopback port; ``refusal``, if set,
    is the answer to every request. The first request head of each connection is kept."""

    def __init__(self, routes: dict[str, int], refusal: bytes | None = None) -> None:
        self.routes = routes
        self.refusal = refusal
        self.heads: list[bytes] = []

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            if self.refusal is not None:
                writer.write(self.refusal)
                await writer.drain()
                return
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            where = target if method == "CONNECT" else urlsplit(target).netloc
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.routes[where])
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(head)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.fixture(scope="module")
def named_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls-named"), HOST, f"DNS:{HOST}")


def test_https_goes_through_a_connect_tunnel_with_tls_end_to_end(
    run: Any, named_certificate: tuple[Path, Path]
) -> None:
    cert, key = named_certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    server: Server
    server = Server(keep_answering(lambda: server, answer(b'{"ok":true}')), served)

    async def main() -> tuple[list[bytes], FakeProxy]:
        async with server as base:
            port = int(base.rsplit(":", 1)[1])
            proxy = FakeProxy({f"{HOST}:{port}": port})
            async with proxy as proxy_port:
                pool = UpstreamPool(ssl_context=ssl.create_default_context(cafile=str(cert)),
                                    proxies=Proxies(https=Proxy("127.0.0.1", proxy_port, AUTH)))  # fmt: skip
                bodies = []
                for _ in range(2):
                    response = await pool.request("POST", f"https://{HOST}:{port}/v1/chat",
                                                  {"authorization": "Bearer sk-x"}, b"{}", **TIMES)  # fmt: skip
                    bodies.append(await response.read())
                    response.release()
                await pool.close()
        return bodies, proxy

    bodies, proxy = run(main())
    assert bodies == [b'{"ok":true}'] * 2
    assert len(proxy.heads) == 1  # one tunnel, kept alive for the second call
    connect = proxy.heads[0].decode()
    assert connect.startswith(f"CONNECT {HOST}:") and f"proxy-authorization: {AUTH}" in connect
    assert "Bearer" not in connect  # the provider's key travels only inside TLS
    assert server.requests[0].startswith(b"POST /v1/chat HTTP/1.1\r\nhost: api.example.test:")
    assert b"proxy-authorization" not in server.requests[0]


def test_http_is_asked_of_the_proxy_with_the_full_url(run: Any) -> None:
    server: Server
    server = Server(keep_answering(lambda: server, answer(b"{}")))

    async def main() -> tuple[bytes, FakeProxy]:
        async with server as base:
            port = int(base.rsplit(":", 1)[1])
            proxy = FakeProxy({f"{HOST}:{port}": port})
            async with proxy as proxy_port:
                pool = UpstreamPool(proxies=Proxies(http=Proxy("127.0.0.1", proxy_port, AUTH)))
                response = await pool.request("GET", f"http://{HOST}:{port}/v1/models?x=1", {},
                                              None, **TIMES)  # fmt: skip
                body = await response.read()
                response.release()
                await pool.close()
        return body, proxy

    body, proxy = run(main())
    assert body == b"{}"
    head = proxy.heads[0].decode()
    assert head.startswith(f"GET http://{HOST}:") and "/v1/models?x=1 HTTP/1.1\r\n" in head
    assert f"host: {HOST}:" in head and f"proxy-authorization: {AUTH}" in head


def test_a_proxy_that_refuses_the_tunnel_is_named_in_the_error(run: Any) -> None:
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n"

    async def main() -> tuple[str, str]:
        proxy = FakeProxy({}, refusal)
        async with proxy as proxy_port:
            pool = UpstreamPool(proxies=Proxies(https=Proxy("127.0.0.1", proxy_port, None)))
            with pytest.raises(ProxyRefused) as raw:
                await pool.request("GET", f"https://{HOST}/v1/models", {}, None, **TIMES)
            client = HttpClient(pool, "openai", RetrySettings(max_attempts=1),
                                TimeoutSettings(connect=2, first_byte=2, total=5),
                                lambda *a: UpstreamConnectionError("unused"))  # fmt: skip
            with pytest.raises(UpstreamConnectionError) as named:
                await client.send(UpstreamCall("GET", f"https://{HOST}/v1/models", {}, None))
            await pool.close()
        return str(raw.value), str(named.value)

    raw, named = run(main())
    assert "refused CONNECT api.example.test:443: HTTP/1.1 407 Proxy Authentication" in raw
    assert named.startswith("could not reach openai: ProxyRefused: proxy 127.0.0.1:")


def test_loopback_upstreams_skip_the_proxy(run: Any) -> None:
    server: Server
    server = Server(keep_answering(lambda: server, answer(b"local")))

    async def main() -> bytes:
        async with server as base:
            # a proxy nobody listens on: any call that tried it would fail
            pool = UpstreamPool(proxies=Proxies(http=Proxy("127.0.0.1", 9, None)))
            response = await pool.request("GET", base + "/api/tags", {}, None, **TIMES)
            body = await response.read()
            response.release()
            await pool.close()
        return body

    assert run(main()) == b"local"
