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
    first, second = _events(pieces[0]), _events(pieces[1])
    assert [e["choices"][0]["delta"].get("content") for e in first] == ["", "one", " two"]
    assert second[0]["choices"][0]["delta"] == {"content": " three"}
    assert second[1]["choices"][0]["finish_reason"] == "stop"
    assert len(second) == 2  # the usage chunk the client did not ask for is left out
    assert pieces[2] == b"data: [DONE]\n\n"


def _events(piece: bytes) -> list[dict[str, Any]]:
    frames = piece.split(b"\n\n")
    assert frames[-1] == b"" and all(f.startswith(b"data: ") for f in frames[:-1]), piece
    return [json.loads(f[6:]) for f in frames[:-1]]


def test_anthropic_surface_writes_once_per_upstream_read(live: LiveGateway) -> None:
    body = {"model": MODEL, "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "count"}]}  # fmt: skip
    pieces = _http_chunks(live.port, "/v1/messages", body)
    assert len(pieces) == 3, pieces  # the start with the first read, the second, the close
    assert pieces[0].startswith(b"event: message_start\n")
    assert b'"text":"one"' in pieces[0] and b'"text":" two"' in pieces[0]
    assert b'"text":" three"' in pieces[1]
    assert pieces[2].endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def _anthropic_event(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


START = _anthropic_event("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x-20251001",
    "content": [], "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}})  # fmt: skip
BODY = b"".join([
    _anthropic_event("content_block_start", {"type": "content_block_start", "index": 0,
                     "content_block": {"type": "text", "text": ""}}),
    _anthropic_event("ping", {"type": "ping"}),
    _anthropic_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": "hi"}}),
    _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _anthropic_event("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 2}}),
    _anthropic_event("message_stop", {"type": "message_stop"}),
])  # fmt: skip


async def _start_then_rest(request: web.Request) -> web.StreamResponse:
    """``message_start`` alone (an event that makes no chunk), the rest a moment later."""
    await request.read()
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(START)
    await asyncio.sleep(0.05)
    await response.write(BODY)
    await response.write_eof()
    return response


async def test_a_relayed_stream_keeps_every_event_in_order() -> None:
    """A client of the upstream's own format gets the upstream's events: those of a read that
    made no chunk wait for the next batch, and the model the client routed to goes into
    ``message_start``."""
    from meterline.providers.anthropic import AnthropicProvider
    from meterline.types import RelayBatch

    app = web.Application()
    app.router.add_post("/v1/messages", _start_then_rest)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    settings = ProviderSettings(name="anthropic", type="anthropic", base_url=base_url)
    question = (Message("user", (TextPart("hi"),)),)
    try:
        pool = UpstreamPool()
        provider = AnthropicProvider(settings, ProviderDeps(pool, Catalog()))
        relayed = [b async for b in provider.stream(
            ChatRequest("claude-x", question, stream=True, wire="anthropic"))]  # fmt: skip
        translated = [b async for b in provider.stream(
            ChatRequest("claude-x", question, stream=True, wire="openai"))]  # fmt: skip
        await pool.close()
    finally:
        await runner.cleanup()
    assert len(relayed) == 1 and isinstance(relayed[0], RelayBatch) and relayed[0].last
    start, _, rest = relayed[0].wire.partition(b"\n\n")
    assert rest == BODY  # every later event as the upstream sent it, pings too
    name, _, data = start.partition(b"\n")
    expected = json.loads(START.split(b"data: ")[1])
    expected["message"]["model"] = "claude-x"
    assert name == b"event: message_start" and json.loads(data[6:]) == expected
    assert [c.text for c in relayed[0] if c.text] == ["hi"]
    assert relayed[0][-1].usage is not None and relayed[0][-1].usage.output_tokens == 2
    assert not any(isinstance(b, RelayBatch) for b in translated)
    assert [c.text for b in translated for c in b if c.text] == ["hi"]
