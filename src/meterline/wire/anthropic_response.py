"""Anthropic Messages responses, stream events, usage and errors, both ways. Pure.

The Anthropic surface uses the ``encode_*`` side and :class:`StreamEncoder` to answer clients;
the Anthropic provider uses the ``decode_*`` side and :class:`StreamDecoder` to read the
upstream. Stream events are ``(event_name, payload)`` pairs; :func:`frame` turns one into SSE
bytes.

Anthropic's ``usage.input_tokens`` counts only the uncached prompt tokens (the total is
``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``), while the internal
:class:`Usage` counts them all; ``encode_usage``/``decode_usage`` do the arithmetic.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import orjson

from meterline.errors import (
    GatewayError,
    ProviderError,
    UpstreamUnavailable,
)
from meterline.types import (
    ChatChunk,
    ChatResponse,
    ContentPart,
    FinishReason,
    Message,
    Relayed,
    TextPart,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)
from meterline.wire.errors import error_for_status
from meterline.wire.sse import encode_event

__all__ = [
    "Event",
    "StreamDecoder",
    "StreamEncoder",
    "decode_error",
    "decode_response",
    "decode_usage",
    "encode_error",
    "encode_response",
    "encode_usage",
    "frame",
    "ping",
]

Event = tuple[str, dict[str, Any]]

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_STATUS = {kind: status for status, kind in _ERROR_TYPES.items()}


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _message_id(raw: str | None) -> str:
    if not raw:
        return _new_id("msg_")
    return raw if raw.startswith("msg_") else f"msg_{raw}"


def _count(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def encode_usage(usage: Usage) -> dict[str, Any]:
    """Anthropic's ``usage``: ``input_tokens`` excludes the cache reads and writes."""
    uncached = usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(0, uncached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }


def decode_usage(raw: Any) -> Usage:
    """The internal :class:`Usage` of an Anthropic ``usage`` object (cache tokens included)."""
    if not isinstance(raw, dict):
        return Usage()
    read = _count(raw, "cache_read_input_tokens")
    write = _count(raw, "cache_creation_input_tokens")
    return Usage(
        input_tokens=_count(raw, "input_tokens") + read + write,
        output_tokens=_count(raw, "output_tokens"),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _encode_part(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, ThinkingPart):
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.text}
        return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": part.id or _new_id("toolu_"),
            "name": part.name,
            "input": _arguments(part.arguments),
        }
    return None


def encode_response(response: ChatResponse, model: str | None = None) -> dict[str, Any]:
    """An Anthropic ``message`` object; ``model`` overrides the name shown to the client.

    Content blocks keep the order of the message's parts (thinking, text, tool use as every
    provider produces them); empty text is left out.
    """
    content = [b for b in map(_encode_part, response.message.parts) if b is not None]
    return {
        "id": _message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": model or response.model,
        "content": content,
        "stop_reason": _STOP[response.finish_reason],
        "stop_sequence": None,
        "usage": encode_usage(response.usage),
    }


def _decode_block(block: Any) -> ContentPart | None:
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return TextPart(str(block.get("text") or ""))
    if kind == "thinking":
        return ThinkingPart(str(block.get("thinking") or ""), block.get("signature"))
    if kind == "redacted_thinking":
        return ThinkingPart(str(block.get("data") or ""), redacted=True)
    if kind == "tool_use":
        return ToolCallPart(
            str(block.get("id") or ""),
            str(block.get("name") or ""),
            orjson.dumps(block.get("input") or {}).decode(),
        )
    return None  # server tool blocks and the like have no internal counterpart


def decode_response(body: Any, relayed: Relayed | None = None) -> ChatResponse:
    """The :class:`ChatResponse` of an upstream Anthropic ``message`` object; ``relayed``: the
    same answer kept whole for a client of the same format."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise UpstreamUnavailable("the upstream answered without content")
    parts = [p for p in map(_decode_block, body["content"]) if p is not None]
    return ChatResponse(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        message=Message("assistant", tuple(parts)),
        finish_reason=_FINISH.get(body.get("stop_reason") or "end_turn", "stop"),
        usage=decode_usage(body.get("usage")),
        relayed=relayed,
    )


# Streaming.


def frame(event_name: str, payload: dict[str, Any]) -> bytes:
    """One SSE frame: ``event: <name>`` and the JSON payload."""
    return encode_event(orjson.dumps(payload), event_name)


def ping() -> Event:
    """The keep-alive event Anthropic sends while a stream is idle."""
    return "ping", {"type": "ping"}


_EMPTY_BLOCKS: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": ""},
    "thinking": {"type": "thinking", "thinking": "", "signature": ""},
}


class StreamEncoder:
    """Encodes internal chunks as Anthropic stream events, in Anthropic's order.

    ``message_start``, then per content block ``content_block_start``, its deltas and
    ``content_block_stop``, then ``message_delta`` (stop reason and usage) and
    ``message_stop``. A block closes when the kind of delta changes (thinking, text, a tool
    call with a new index). Upstreams may report usage after the finish reason, so the
    closing events wait for :meth:`finish`.
    """

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._index = -1
        self._open: str | None = None
        self._signed = False
        self._tools: dict[int, int] = {}
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    def start(self, message_id: str, model: str, input_tokens: int = 0) -> list[Event]:
        """The ``message_start`` event (empty once the stream has started)."""
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": _message_id(message_id),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def encode(self, chunk: ChatChunk) -> list[Event]:
        """The events for one chunk; starts the message if :meth:`start` was not called."""
        out = [] if self._started else self.start(chunk.id or "", chunk.model or "")
        if chunk.thinking:
            if self._open == "thinking" and self._signed:
                out += self._close()  # a signed thinking block is complete
            out += self._delta("thinking", {"type": "thinking_delta", "thinking": chunk.thinking})
        if chunk.thinking_signature:
            out += self._delta(
                "thinking", {"type": "signature_delta", "signature": chunk.thinking_signature}
            )
            self._signed = True
        if chunk.text:
            out += self._delta("text", {"type": "text_delta", "text": chunk.text})
        if chunk.tool_call is not None:
            out += self._tool_call(chunk.tool_call)
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
            out += self._close()
        if chunk.usage is not None:
            self._usage = chunk.usage
        return out

    def finish(self, usage: Usage | None = None) -> list[Event]:
        """Close the open block, then ``message_delta`` and ``message_stop``.

        ``usage`` (else the last usage seen in a chunk) fills the ``message_delta`` usage.
        """
        if self._finished:
            return []
        out = [] if self._started else self.start("", "")
        out += self._close()
        self._finished = True
        usage = usage or self._usage
        if self._finish is not None:
            stop = _STOP[self._finish]
        else:
            stop = "tool_use" if self._tools else "end_turn"
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": encode_usage(usage) if usage is not None else {"output_tokens": 0},
        }
        return [*out, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[Event]:
        out = self._close()
        self._index += 1
        self._open = kind
        self._signed = False
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return [*out, ("content_block_start", start)]

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _delta(self, kind: str, delta: dict[str, Any], index: int | None = None) -> list[Event]:
        out = []
        if index is None:
            if self._open != kind:
                out = self._open_block(kind, dict(_EMPTY_BLOCKS[kind]))
            index = self._index
        body = {"type": "content_block_delta", "index": index, "delta": delta}
        return [*out, ("content_block_delta", body)]

    def _tool_call(self, call: ToolCallDelta) -> list[Event]:
        out: list[Event] = []
        index = self._tools.get(call.index)
        if index is None:
            block = {
                "type": "tool_use",
                "id": call.id or _new_id("toolu_"),
                "name": call.name or "",
                "input": {},
            }
            out = self._open_block("tool_use", block)
            index = self._tools[call.index] = self._index
        if call.arguments:
            # A late piece of an earlier call goes to that call's block (by its index).
            delta = {"type": "input_json_delta", "partial_json": call.arguments}
            out += self._delta("tool_use", delta, index)
        return out


class StreamDecoder:
    """Turns an upstream's Anthropic stream events into internal chunks.

    Block deltas yield text, thinking, signature and tool call chunks (tool calls numbered
    from 0 in order); ``message_delta`` yields the finish reason; ``message_stop`` yields the
    combined usage. An ``error`` event raises the mapped :class:`ProviderError`.

    ``message_start`` yields nothing by itself: the message ``id``/``model`` ride on the first
    chunk that follows, so a stream's first chunk is real output (first-token timing, and an
    ``error`` event before any output still fails the request before its first byte).
    """

    def __init__(self, provider: str = "anthropic") -> None:
        self.provider = provider
        self.id: str | None = None
        self.model: str | None = None
        self._usage: dict[str, int] = {}
        self._tools: dict[int, int] = {}
        self._identify = False

    def feed(self, event_name: str | None, data: dict[str, Any]) -> list[ChatChunk]:
        """The chunks carried by one event (``data["type"]``, else ``event_name``, names it)."""
        chunks = self._chunks(data.get("type") or event_name, data)
        if chunks and self._identify:
            self._identify = False
            chunks[0] = replace(chunks[0], id=self.id, model=self.model)
        return chunks

    def _chunks(self, kind: str | None, data: dict[str, Any]) -> list[ChatChunk]:
        if kind == "message_start":
            return self._message_start(data.get("message") or {})
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            self._add_usage(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            return [ChatChunk(finish_reason=_FINISH.get(reason, "stop"))] if reason else []
        if kind == "message_stop":
            return [ChatChunk(usage=decode_usage(self._usage))]
        if kind == "error":
            err = data.get("error")
            status = _ERROR_STATUS.get(str(err.get("type")), 500) if isinstance(err, dict) else 500
            raise decode_error(status, data, {}, self.provider)
        return []  # ping, content_block_stop and event types added later

    def _add_usage(self, raw: Any) -> None:
        """Usage counts are cumulative: a later event's count replaces an earlier one."""
        if not isinstance(raw, dict):
            return
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                     "cache_creation_input_tokens"):  # fmt: skip
            if raw.get(name) is not None:
                self._usage[name] = _count(raw, name)

    def _message_start(self, message: dict[str, Any]) -> list[ChatChunk]:
        self.id = message.get("id")
        self.model = message.get("model")
        self._identify = True
        self._add_usage(message.get("usage"))
        return []

    def _block_start(self, data: dict[str, Any]) -> list[ChatChunk]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [ChatChunk(text=block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [ChatChunk(thinking=block["thinking"])]
        if kind == "tool_use":
            tool = self._tools[int(data.get("index", 0))] = len(self._tools)
            call = ToolCallDelta(tool, id=block.get("id"), name=block.get("name"), arguments="")
            return [ChatChunk(tool_call=call)]
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[ChatChunk]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [ChatChunk(text=delta["text"])]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [ChatChunk(thinking=delta["thinking"])]
        if kind == "signature_delta" and delta.get("signature"):
            return [ChatChunk(thinking_signature=delta["signature"])]
        tool = self._tools.get(int(data.get("index", 0)))
        if kind == "input_json_delta" and tool is not None and delta.get("partial_json"):
            return [ChatChunk(tool_call=ToolCallDelta(tool, arguments=delta["partial_json"]))]
        return []


# Errors.


def encode_error(error: GatewayError) -> dict[str, Any]:
    """Anthropic's error body; the ``type`` follows the HTTP status the error is sent with."""
    kind = _ERROR_TYPES.get(error.status)
    if kind is None:
        kind = "invalid_request_error" if error.status < 500 else "api_error"
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def decode_error(status: int, body: Any, headers: dict[str, str], provider: str) -> ProviderError:
    """Map an upstream Anthropic error answer to the gateway's hierarchy, keeping its message."""
    err = body.get("error") if isinstance(body, dict) else None
    message = (err.get("message") if isinstance(err, dict) else None) or f"upstream HTTP {status}"
    kind = err.get("type") if isinstance(err, dict) else None
    overloaded = status >= 500 and (status == 529 or kind == "overloaded_error")
    code = "overloaded_error" if overloaded else None
    return error_for_status(status, message, headers, provider, code=code)
