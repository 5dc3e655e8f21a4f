"""OpenAI Chat Completions responses, stream chunks, usage and errors, both ways. Pure.

The surface uses the ``encode_*`` side to answer clients; the OpenAI and OpenAI-compatible
providers use the ``decode_*`` side to read upstreams. Keeping both in one module makes the
round trip testable with plain data.
"""

from __future__ import annotations

import time
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

__all__ = [
    "StreamEncoder",
    "decode_chunk",
    "decode_error",
    "decode_response",
    "decode_usage",
    "encode_error",
    "encode_response",
    "encode_usage",
    "relayed_response",
]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def encode_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def decode_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(prompt.get("cached_tokens") or 0),
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
    )


def _message_body(message: Message) -> dict[str, Any]:
    text = [p.text for p in message.parts if isinstance(p, TextPart)]
    body: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text else None,
        "refusal": None,
        "annotations": [],
    }
    thinking = [p.text for p in message.parts if isinstance(p, ThinkingPart) and not p.redacted]
    if thinking:
        body["reasoning_content"] = "".join(thinking)
    if message.tool_calls:
        body["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return body


def encode_response(response: ChatResponse, model: str | None = None) -> dict[str, Any]:
    """A ``chat.completion`` object; ``model`` overrides the name shown to the client."""
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created or int(time.time()),
        "model": model or response.model,
        "choices": [
            {
                "index": 0,
                "message": _message_body(response.message),
                "logprobs": None,
                "finish_reason": response.finish_reason,
            }
        ],
        "usage": encode_usage(response.usage),
        "service_tier": "default",
        "system_fingerprint": response.system_fingerprint,
    }


def relayed_response(body: dict[str, Any], response: ChatResponse, model: str) -> dict[str, Any]:
    """An upstream's ``chat.completion`` as the client gets it: as it came, with ``model`` the
    name the client routed to, and the id and usage of ``response`` where the upstream gave
    none."""
    out = {**body, "model": model}
    if not out.get("id"):
        out["id"] = response.id
    if out.get("usage") is None:
        out["usage"] = encode_usage(response.usage)
    return out


def decode_response(body: Any, relayed: Relayed | None = None) -> ChatResponse:
    """The :class:`ChatResponse` of an upstream ``chat.completion``; ``relayed``: the same
    answer kept whole for a client of the same format."""
    if not isinstance(body, dict) or not body.get("choices"):
        raise UpstreamUnavailable("the upstream answered without choices")
    choice = body["choices"][0]
    raw = choice.get("message") or {}
    parts: list[ContentPart] = []
    if isinstance(raw.get("reasoning_content"), str) and raw["reasoning_content"]:
        parts.append(ThinkingPart(raw["reasoning_content"]))
    if isinstance(raw.get("content"), str):
        parts.append(TextPart(raw["content"]))
    for call in raw.get("tool_calls") or ():
        fn = call.get("function") or {}
        parts.append(ToolCallPart(call.get("id", ""), fn.get("name", ""), fn.get("arguments", "")))
    return ChatResponse(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        message=Message("assistant", tuple(parts)),
        finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", "stop"),
        usage=decode_usage(body.get("usage")),
        created=int(body.get("created") or 0),
        system_fingerprint=body.get("system_fingerprint"),
        relayed=relayed,
    )


def decode_chunk(body: Any) -> list[ChatChunk]:
    """The internal chunks carried by one upstream ``chat.completion.chunk``."""
    if not isinstance(body, dict):
        return []
    out: list[ChatChunk] = []
    for choice in body.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        if delta.get("reasoning_content"):
            out.append(ChatChunk(thinking=delta["reasoning_content"]))
        if delta.get("content"):
            out.append(ChatChunk(text=delta["content"]))
        for call in delta.get("tool_calls") or ():
            fn = call.get("function") or {}
            out.append(
                ChatChunk(
                    tool_call=ToolCallDelta(
                        index=int(call.get("index", 0)),
                        id=call.get("id"),
                        name=fn.get("name"),
                        arguments=fn.get("arguments") or "",
                    )
                )
            )
        if choice.get("finish_reason"):
            out.append(ChatChunk(finish_reason=_FINISH.get(choice["finish_reason"], "stop")))
    if body.get("usage"):
        out.append(ChatChunk(usage=decode_usage(body["usage"])))
    return out


class StreamEncoder:
    """Encodes internal chunks as OpenAI ``chat.completion.chunk`` objects (JSON bytes), in
    OpenAI's order.

    The first chunk carries ``role``; tool calls announce ``id``/``name`` once and then stream
    ``arguments``; with ``include_usage`` every chunk has ``"usage": null`` and a final chunk with
    empty ``choices`` carries the usage. The fields every chunk shares are serialised once per
    stream, not once per chunk: the bytes are those of serialising each whole object.
    """

    def __init__(self, chunk_id: str, model: str, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self._head = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": None,
        }
        self._open = orjson.dumps(self._head)[:-1] + b',"choices":[{"index":0,"delta":'
        self._close = b"}]" + (b',"usage":null}' if include_usage else b"}")
        self._started = False
        self._announced: set[int] = set()

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        reason = b"null" if finish is None else orjson.dumps(finish)
        return (self._open + orjson.dumps(delta) + b',"logprobs":null,"finish_reason":' + reason
                + self._close)  # fmt: skip

    def start(self) -> bytes:
        self._started = True
        return self._choice({"role": "assistant", "content": "", "refusal": None})

    def encode(self, chunk: ChatChunk) -> list[bytes]:
        out = [] if self._started else [self.start()]
        if chunk.thinking:
            out.append(self._choice({"reasoning_content": chunk.thinking}))
        if chunk.text:
            out.append(self._choice({"content": chunk.text}))
        if chunk.tool_call is not None:
            out.append(self._choice({"tool_calls": [self._tool_delta(chunk.tool_call)]}))
        if chunk.finish_reason is not None:
            out.append(self._choice({}, chunk.finish_reason))
        if chunk.usage is not None and self.include_usage:
            usage = {**self._head, "choices": [], "usage": encode_usage(chunk.usage)}
            out.append(orjson.dumps(usage))
        return out

    def _tool_delta(self, call: ToolCallDelta) -> dict[str, Any]:
        if call.index in self._announced:
            return {"index": call.index, "function": {"arguments": call.arguments}}
        self._announced.add(call.index)
        return {
            "index": call.index,
            "id": call.id or f"call_{call.index}",
            "type": "function",
            "function": {"name": call.name or "", "arguments": call.arguments},
        }


def encode_error(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.kind
            if error.status < 500 or error.kind != "api_error"
            else "server_error",
            "param": error.param,
            "code": error.code,
        }
    }


def decode_error(status: int, body: Any, headers: dict[str, str], provider: str) -> ProviderError:
    """Map an upstream error answer to the gateway's hierarchy, keeping the upstream message."""
    err = body.get("error") if isinstance(body, dict) else None
    message = (err.get("message") if isinstance(err, dict) else None) or f"upstream HTTP {status}"
    code = err.get("code") if isinstance(err, dict) else None
    param = err.get("param") if isinstance(err, dict) else None
    return error_for_status(status, message, headers, provider, code=code, param=param)
