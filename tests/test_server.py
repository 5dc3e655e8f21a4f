"""The served app's answers leave in as few socket writes as they can: an answer's head goes
with its first body bytes (``meterline.server``), a stream's last events with its end."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meterline.server import HeldHead
from meterline.settings import ProviderSettings
from tests.fakes.events import chunk_event
from tests.fakes.harness import BackgroundLoop, LiveGateway, provider_settings, start_gateway


class Transport:
    """What a socket would have been asked to write, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closing
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)

    def pause_reading(self) -> None:
        self.writes.append(b"<paused>")


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def test_a_head_goes_out_with_the_first_body_bytes() -> None:
    raw = Transport()
    transport = HeldHead(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)
    assert raw.writes == []
    transport.write(b"{}")
    transport.write(b"more")
    assert raw.writes == [HEAD + b"{}", b"more"]
    await asyncio.sleep(0)  # the safety flush finds nothing left to write
    assert raw.writes == [HEAD + b"{}", b"more"]


async def test_a_head_without_a_body_goes_out_on_the_next_turn() -> None:
    raw = Transport()
    transport = HeldHead(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(HEAD)  # a HEAD request's answer: uvicorn writes no body at all
    await asyncio.sleep(0)
    assert raw.writes == [HEAD]


async def test_interim_answers_are_not_held_and_closing_flushes() -> None:
    raw = Transport()
    transport = HeldHead(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(HEAD)
    transport.close()  # an app that failed after starting its answer: the head still goes
    assert raw.writes[-1] == HEAD and raw.closing
    await asyncio.sleep(0)  # and it is not written twice
    assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", HEAD]


async def test_abort_drops_a_held_head_and_the_rest_is_delegated() -> None:
    raw = Transport()
    transport = HeldHead(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    transport.pause_reading()  # through __getattr__ to the real transport
    transport.write(HEAD)
    transport.abort()
    await asyncio.sleep(0)
    assert raw.writes == [b"<paused>"] and raw.aborted


# -- through the gateway: a stream whose upstream ends in the read that carried its last events


STREAM = b"".join(
    [chunk_event({"role": "assistant", "content": ""}), chunk_event({"content": "one"}),
     chunk_event({"content": " two"}), chunk_event({}, "stop"), chunk_event(None), b"data: [DONE]\n\n"]
)  # fmt: skip


async def _upstream(split_end: bool) -> tuple[asyncio.Server, str]:
    """A raw upstream: the whole stream in one chunk; the chunked body's end in the same write,
    or (``split_end``) a moment later in a write of its own."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))  # fmt: skip
                await reader.readexactly(length)
                answer = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                          b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n") % (len(STREAM), STREAM)  # fmt: skip
                if split_end:
                    writer.write(answer)
                    await writer.drain()
                    await asyncio.sleep(0.05)
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(answer + b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


@pytest.fixture(params=[False, True], ids=["end-with-events", "end-apart"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveGateway, bool]]:
    loop = BackgroundLoop()
    server, base_url = loop.run(_upstream(request.param))
    provider = ProviderSettings(name="openai", type="openai", base_url=base_url, api_key="sk-x")
    live = start_gateway(loop, provider_settings(tmp_path, provider))
    yield live, request.param
    live.stop()
    server.close()
    loop.close()


def _reads(port: int, path: str, body: dict[str, Any]) -> list[bytes]:
    """POST ``body`` and return what each socket read brought, until the answer's end."""
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n\r\n").encode()  # fmt: skip
    reads: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + payload)
        while not b"".join(reads).endswith(b"\r\n0\r\n\r\n"):
            reads.append(sock.recv(65536))
            assert reads[-1], "the gateway closed the connection"
    return reads


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_stream_that_ends_with_its_events_is_one_write(
    live: tuple[LiveGateway, bool], path: str
) -> None:
    gateway, split_end = live
    body = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "count"}]}  # fmt: skip
    reads = _reads(gateway.port, path, body)
    whole = b"".join(reads)
    assert whole.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'"one"' in whole and b'" two"' in whole
    last = b"data: [DONE]\n\n" if path.endswith("completions") else b'"message_stop"}\n\n'
    assert whole.endswith(last + b"\r\n0\r\n\r\n")
    if split_end:  # the upstream's end came apart: the events went out before it, on their own
        assert len(reads) >= 2
        assert b'" two"' in b"".join(reads[:-1])
    else:  # head, events and end in one write: one read here (the gateway is on loopback)
        assert len(reads) == 1, reads
