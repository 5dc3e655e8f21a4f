"""Streamed chunks travel in batches, one per upstream read, and reach the client in one write
per batch: ten events in one packet cost one pass through the stream layers and one socket
write, not ten (:data:`meterline.types.ChunkStream`)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from meterline.catalog import Catalog
from meterline.providers import ProviderDeps
from meterline.providers.openai import OpenAIProvider
from meterline.providers.upstream import UpstreamPool
from meterline.settings import ProviderSettings
from meterline.types import ChatRequest, Message, TextPart
from tests.fakes.events import chunk_event
from tests.fakes.harness import BackgroundLoop, LiveGateway, provider_settings, start_gateway

MODEL = "gpt-4o-mini"


FIRST = b"".join(chunk_event(d) for d in ({"role": "assistant", "content": ""}, {"content": "one"},
                                     {"content": " two"}))  # fmt: skip
SECOND = (
    chunk_event({"content": " three"})
    + chunk_event({}, "stop")
    + chunk_event(None)
    + b"data: [DONE]\n\n"
)


async def _two_packets(request: web.Request) -> web.StreamResponse:
    """Three events in one write, then, a moment later, the rest in another, and later still
    the body's end (an end in the same read as the last events: ``tests/test_server.py``)."""
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(FIRST)
    await asyncio.sleep(0.05)
    await response.write(SECOND)
    await asyncio.sleep(0.05)
    await response.write_eof()
    return response


async def _upstream() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _two_packets)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"


async def test_provider_yields_one_batch_per_upstream_read() -> None:
    runner, base_url = await _upstream()
    settings = ProviderSettings(name="openai", type="openai", base_url=base_url, api_key="sk-x")
    request = ChatRequest(MODEL, (Message("user", (TextPart("count"),)),), stream=True)
    try:
        pool = UpstreamPool()
        provider = OpenAIProvider(settings, ProviderDeps(pool, Catalog()))
        stream: AsyncIterator[Any] = provider.stream(request)
        batches = [batch async for batch in stream]
        await pool.close()
    finally:
        await runner.cleanup()
    assert [[c.text for c in batch] for batch in batches] == [
        ["one", " two"],
        [" three", None, None],
    ]
    assert batches[1][1].finish_reason == "stop"
    assert batches[1][2].usage is not None and batches[1][2].usage.output_tokens == 3


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    loop = BackgroundLoop()
    runner, base_url = loop.run(_upstream())
    provider = ProviderSettings(name="openai", type="openai", base_url=base_url, api_key="sk-x")
    live = start_gateway(loop, provider_settings(tmp_path, provider))
    yield live
    live.stop()
    loop.run(runner.cleanup())
    loop.close()


def _http_chunks(port: int, path: str, body: dict[str, Any]) -> list[bytes]:
    """POST ``body`` and return the answer's chunked-transfer pieces: what each write sent."""
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + payload)
        raw = b""
        while data := sock.recv(65536):
            raw += data
    headers, _, rest = raw.partition(b"\r\n\r\n")
    assert headers.startswith(b"HTTP/1.1 200"), headers
    assert b"transfer-encoding: chunked" in headers.lower()
    pieces: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return pieces
        pieces.append(rest[:size])
        rest = rest[size + 2 :]


def test_openai_surface_writes_once_per_upstream_read(live: LiveGateway) -> None:
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "count"}]}
    pieces = _http_chunks(live.port, "/v1/chat/completions", body)
    assert len(pieces) == 3, pieces  # the first read, the second, then [DONE]
    assert pieces[0].count(b"data: ") == 3  # role, "one", " two"
    assert b'"content":" three"' in pieces[1] and b'"finish_reason":"stop"' in pieces[1]
    assert pieces[2] == b"data: [DONE]\n\n"


def test_anthropic_surface_writes_once_per_upstream_read(live: LiveGateway) -> None:
    body = {"model": MODEL, "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "count"}]}  # fmt: skip
    pieces = _http_chunks(live.port, "/v1/messages", body)
    assert len(pieces) == 3, pieces  # the start with the first read, the second, the close
    assert pieces[0].startswith(b"event: message_start\n")
    assert b'"text":"one"' in pieces[0] and b'"text":" two"' in pieces[0]
    assert b'"text":" three"' in pieces[1]
    assert pieces[2].endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
