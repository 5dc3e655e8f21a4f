"""A deliberately fast fake OpenAI upstream for the overhead benchmark.

``python benchmarks/fastupstream.py --port 9000`` serves ``POST /v1/chat/completions`` on
127.0.0.1 from a raw :mod:`asyncio` protocol: HTTP/1.1 keep-alive, ``Content-Length`` bodies,
and answers built once at start-up (no JSON parsing, no tokenizing). A body containing
``"stream": true`` gets a short SSE stream of ``chat.completion.chunk`` events, a usage chunk
and ``data: [DONE]``; anything else gets one ``chat.completion`` with a usage block.
``GET /health`` answers ``ok``. It must stay far faster than the gateway, so that the
benchmark measures the gateway and not this server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
from typing import Any

MODEL = "gpt-4o-mini"
PIECES = ("Hello", "!", " How", " can", " I", " help", " you", " today", "?")
USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": len(PIECES),
    "total_tokens": 19 + len(PIECES),
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
HEAD = {
    "id": "chatcmpl-bench0000000000000000",
    "created": 1700000000,
    "model": MODEL,
    "service_tier": "default",
    "system_fingerprint": "fp_bench",
}
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nx-request-id: req_bench\r\n\r\n"
    )
    return head.encode() + body


def completion_body() -> bytes:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(PIECES),
        "refusal": None,
        "annotations": [],
    }
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    body = {**HEAD, "object": "chat.completion", "choices": [choice], "usage": USAGE}
    return json.dumps(body, separators=(",", ":")).encode()


def stream_body() -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**HEAD, "object": "chat.completion.chunk", "choices": [choice], "usage": None}

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in PIECES]
    chunks.append(chunk({}, "stop"))
    chunks.append({**HEAD, "object": "chat.completion.chunk", "choices": [], "usage": USAGE})
    events = [b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks]
    return b"".join(events) + b"data: [DONE]\n\n"


COMPLETION = _response("200 OK", "application/json", completion_body())
STREAM = _response("200 OK", "text/event-stream; charset=utf-8", stream_body())
HEALTH = _response("200 OK", "text/plain", b"ok")
NOT_FOUND = _response("404 Not Found", "application/json", b'{"error":{"message":"not found"}}')
UNSUPPORTED = _response("411 Length Required", "text/plain", b"send a content-length body")


class FakeOpenAI(asyncio.Protocol):
    """One keep-alive connection; requests may arrive pipelined or split across reads."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and self._answer_one():
            pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def _answer_one(self) -> bool:
        """Answer the first complete request in the buffer; False when there is none yet."""
        assert self.transport is not None
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end])
        if b"transfer-encoding: chunked" in head.lower():
            self.transport.write(UNSUPPORTED)
            self.transport.close()
            return False
        match = _CONTENT_LENGTH.search(head)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self.buffer) < total:
            return False
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self.transport.write(_route(head, body))
        return True


def _route(head: bytes, body: bytes) -> bytes:
    if head.startswith(b"POST /v1/chat/completions "):
        return STREAM if _STREAM_FLAG.search(body) else COMPLETION
    if head.startswith(b"GET /health "):
        return HEALTH
    return NOT_FOUND


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FakeOpenAI, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
