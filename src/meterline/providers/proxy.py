"""Outbound HTTP proxies for provider calls, chosen the way curl, requests and httpx (the
official SDKs' client) choose them: ``HTTPS_PROXY`` for https URLs, ``HTTP_PROXY`` for http
ones, ``ALL_PROXY`` for either when the other is unset (lower-case names win over upper-case),
and ``NO_PROXY`` for the hosts reached directly.

``NO_PROXY`` is a comma-separated list: ``*`` (no proxy at all), host names (``example.com``
also covers ``api.example.com``; a leading dot is allowed), IP addresses or networks
(``10.0.0.0/8``), each optionally with ``:port``. Loopback (``localhost``, ``127.0.0.0/8``,
``::1``) is always reached directly: a local model server is on this machine, not the proxy's.

An https origin goes through an ``http://`` proxy in a ``CONNECT`` tunnel, TLS inside it end
to end; an http origin is asked of the proxy directly, with the full URL as the request target.
``user:password@`` in the proxy URL becomes a ``Proxy-Authorization: Basic`` header. Proxies
reached over TLS (``https://`` proxy URLs) and SOCKS proxies are refused at start-up with a
clear message.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Proxies", "Proxy", "ProxyRefused", "ProxySettingError", "open_tunnel"]

_HEAD_LIMIT = 64 * 1024  # bytes of a proxy's answer to CONNECT we read before giving up


class ProxySettingError(ValueError):
    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class ProxyRefused(ConnectionError):
    """The proxy would not open a tunnel (its status line says why) or answered garbage."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value, from the URL's user:password

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


def _parse(url: str, variable: str) -> Proxy:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ProxySettingError(
            variable,
            f"{url!r}: only http:// proxies are supported (a CONNECT tunnel carries TLS to the "
            "provider end to end)",
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(parts.hostname, parts.port or 80, authorization)


def _first(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    for variable in (name.lower(), name.upper()):
        if value := env.get(variable, "").strip():
            return variable, value
    return None


class Proxies:
    """The proxy (or none) for each scheme and host, from environment variables."""

    def __init__(
        self, http: Proxy | None = None, https: Proxy | None = None, no_proxy: str = ""
    ) -> None:
        self.by_scheme = {"http": http, "https": https}
        self._rules = [rule.strip().lower() for rule in no_proxy.split(",") if rule.strip()]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Proxies:
        fallback = _first(env, "all_proxy")
        chosen = {}
        for scheme in ("http", "https"):
            found = _first(env, f"{scheme}_proxy") or fallback
            chosen[scheme] = _parse(found[1], found[0]) if found else None
        no_proxy = _first(env, "no_proxy")
        return cls(chosen["http"], chosen["https"], no_proxy[1] if no_proxy else "")

    def __bool__(self) -> bool:
        return any(self.by_scheme.values())

    def choose(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.by_scheme.get(scheme)
        host = host.lower()
        if proxy is None or _loopback(host):
            return None
        if any(_bypasses(rule, host, port) for rule in self._rules):
            return None
        return proxy


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bypasses(rule: str, host: str, port: int) -> bool:
    """Does ``NO_PROXY`` entry ``rule`` cover ``host:port``?"""
    if rule == "*":
        return True
    name, rule_port = rule, None
    if rule.startswith("["):  # [v6]:port
        name, _, rest = rule[1:].partition("]")
        rule_port = rest.removeprefix(":") or None
    elif rule.count(":") == 1:
        name, rule_port = rule.split(":")
    if rule_port is not None and rule_port != str(port):
        return False
    try:
        network = ipaddress.ip_network(name, strict=False)
    except ValueError:
        name = name.lstrip(".")
        return host == name or host.endswith("." + name)
    try:
        return ipaddress.ip_address(host.strip("[]")) in network
    except ValueError:
        return False


async def open_tunnel(
    proxy: Proxy, host: str, port: int, loop: asyncio.AbstractEventLoop
) -> socket.socket:
    """A socket connected to ``proxy`` on which ``CONNECT host:port`` succeeded: bytes written
    to it now reach ``host:port`` (the caller starts TLS over it)."""
    sock = await _connected(proxy, loop)
    try:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1\r\n", f"host: {target}\r\n"]
        if proxy.authorization:
            lines.append(f"proxy-authorization: {proxy.authorization}\r\n")
        await loop.sock_sendall(sock, "".join(lines + ["\r\n"]).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = await loop.sock_recv(sock, 4096)
            if not data or len(head) + len(data) > _HEAD_LIMIT:
                raise ProxyRefused(f"proxy {proxy.name} closed or garbled its answer to CONNECT")
            head += data
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].startswith("2"):
            raise ProxyRefused(f"proxy {proxy.name} refused CONNECT {target}: {status_line}")
    except BaseException:
        sock.close()
        raise
    return sock


async def _connected(proxy: Proxy, loop: asyncio.AbstractEventLoop) -> socket.socket:
    infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for proxy {proxy.name}")
    for family, kind, protocol, _, address in infos:
        sock = socket.socket(family, kind, protocol)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error
