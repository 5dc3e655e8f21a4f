"""Ollama's native ``POST /api/chat`` ⇄ the internal types. Pure.

The Ollama provider sends :func:`encode_request` to ``{base}/api/chat`` and reads the answer with
:func:`decode_response`, or feeds the NDJSON stream (one JSON object per line, the last one with
``"done": true`` and the token counts) to a :class:`StreamDecoder` at any byte boundary.

Ollama differs from OpenAI where it matters for a translation:

* message ``content`` is always plain text; images travel base64-encoded in ``images``, so
  images given by URL cannot be sent;
* tool-call ``arguments`` are JSON objects, calls carry no ids, and a tool result names the
  function it answers (``tool_name``) instead of a call id;
* ``done_reason`` stays ``"stop"`` when the model called tools.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from meterline.errors import (
    InvalidRequest,
    ProviderError,
    UpstreamUnavailable,
)
from meterline.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from meterline.wire.errors import error_for_status

__all__ = ["StreamDecoder", "decode_error", "decode_response", "decode_tags", "encode_request"]

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}
_OPTIONS = (
    ("max_tokens", "num_predict"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
)


# Encoding: ChatRequest → the /api/chat body.


def _args(arguments: str) -> dict[str, Any]:
    """Tool-call arguments as the object Ollama wants; invalid or non-object JSON gives ``{}``."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _image(part: ImagePart, where: str) -> str:
    """The base64 payload of an inline image; Ollama cannot fetch images by URL."""
    if part.data is not None:
        return part.data
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        return url.split(";base64,", 1)[1]
    raise InvalidRequest(
        f"Ollama takes only inline (base64) images; the image at {where} is a URL", param=where
    )


def _images(parts: tuple[ContentPart, ...], where: str) -> list[str]:
    return [
        _image(part, f"{where}[{i}]") for i, part in enumerate(parts) if isinstance(part, ImagePart)
    ]


def _with_images(out: dict[str, Any], images: list[str]) -> dict[str, Any]:
    if images:
        out["images"] = images
    return out


def _tool_messages(message: Message, names: dict[str, str], index: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in message.parts:
        if not isinstance(part, ToolResultPart):
            continue
        body: dict[str, Any] = {"role": "tool", "content": part.text}
        name = names.get(part.tool_call_id) or message.name
        if name:
            body["tool_name"] = name
        out.append(_with_images(body, _images(part.content, f"messages[{index}].content")))
    return out


def _message(message: Message, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    _with_images(out, _images(message.parts, f"messages[{index}].content"))
    if message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": call.name, "arguments": _args(call.arguments)}}
            for call in message.tool_calls
        ]
    return out


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name, latest call wins
    for index, message in enumerate(messages):
        if message.role == "tool":
            out.extend(_tool_messages(message, names, index))
            continue
        names.update((call.id, call.name) for call in message.tool_calls)
        out.append(_message(message, index))
    return out


def _tool(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": fn}


def _format(fmt: ResponseFormat | None) -> str | dict[str, Any] | None:
    """``"json"`` for JSON mode, the schema itself for structured output."""
    if fmt is None or fmt.type == "text":
        return None
    schema = fmt.json_schema.get("schema") if fmt.json_schema else None
    return schema if fmt.type == "json_schema" and isinstance(schema, dict) else "json"


def _options(request: ChatRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for field, key in _OPTIONS:
        value = getattr(request, field)
        if value is not None:
            options[key] = value
    if request.stop:
        options["stop"] = list(request.stop)
    return options


def encode_request(request: ChatRequest) -> dict[str, Any]:
    """The ``/api/chat`` body for ``request``.

    ``stream`` is always explicit (Ollama streams by default). Ollama has no tool choice: with
    ``tool_choice`` ``none`` the tools are left out, ``required`` and a named tool cannot be
    enforced. ``think`` is passed through from ``extra`` when the client sent it.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.messages),
        "stream": request.stream,
    }
    choice = request.tool_choice
    if request.tools and (choice is None or choice.mode != "none"):
        body["tools"] = [_tool(t) for t in request.tools]
    fmt = _format(request.response_format)
    if fmt is not None:
        body["format"] = fmt
    options = _options(request)
    if options:
        body["options"] = options
    if "think" in request.extra:
        body["think"] = request.extra["think"]
    return body


# Decoding: /api/chat answers, NDJSON stream lines, errors, model lists.


def _count(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    return int(value) if isinstance(value, int | float) else 0


def _usage(body: dict[str, Any]) -> Usage:
    """``prompt_eval_count`` / ``eval_count`` (the latter includes thinking tokens)."""
    return Usage(
        input_tokens=_count(body, "prompt_eval_count"),
        output_tokens=_count(body, "eval_count"),
    )


def _call_fields(raw: Any, index: int) -> tuple[str, str, str]:
    """``(id, name, arguments JSON)`` of one tool call; ids default to ``call_<n>``."""
    call: dict[str, Any] = raw if isinstance(raw, dict) else {}
    fn: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
    args = fn.get("arguments")
    arguments = args if isinstance(args, str) else _compact(args if isinstance(args, dict) else {})
    return str(call.get("id") or f"call_{index}"), str(fn.get("name", "")), arguments


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _raw_calls(message: dict[str, Any]) -> list[Any]:
    calls = message.get("tool_calls")
    return calls if isinstance(calls, list) else []


def _finish(reason: Any, tool_calls: bool) -> FinishReason:
    mapped = _FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if mapped == "stop" and tool_calls else mapped


def _created(raw: Any) -> int:
    if not isinstance(raw, str):
        return 0
    try:
        return int(datetime.fromisoformat(raw).timestamp())
    except ValueError:
        return 0


def decode_response(body: Any) -> ChatResponse:
    """A non-streamed ``/api/chat`` answer as a :class:`ChatResponse`."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(message, dict):
        raise UpstreamUnavailable("the upstream answered without a message")
    parts: list[ContentPart] = []
    if isinstance(message.get("thinking"), str) and message["thinking"]:
        parts.append(ThinkingPart(message["thinking"]))
    calls = [ToolCallPart(*_call_fields(c, i)) for i, c in enumerate(_raw_calls(message))]
    content = message.get("content")
    if isinstance(content, str) and (content or not calls):
        parts.append(TextPart(content))
    parts.extend(calls)
    return ChatResponse(
        id="",
        model=str(body.get("model") or ""),
        message=Message("assistant", tuple(parts)),
        finish_reason=_finish(body.get("done_reason"), bool(calls)),
        usage=_usage(body),
        created=_created(body.get("created_at")),
    )


class StreamDecoder:
    """Turns a streamed ``/api/chat`` answer (NDJSON) into internal chunks.

    Feed raw bytes to :meth:`feed` as they arrive (lines may be split anywhere, even inside a
    UTF-8 character) and call :meth:`close` at the end; or hand whole lines to
    :meth:`feed_line`. Tool calls arrive whole, so each becomes one :class:`ToolCallDelta`.
    The final ``"done": true`` object yields the finish-reason chunk and then one usage chunk.
    An ``{"error": …}`` object raises the mapped :class:`ProviderError`.
    """

    def __init__(self, provider: str = "ollama") -> None:
        self.provider = provider
        self._buffer = b""
        self._calls = 0
        self._head_sent = False

    def feed(self, data: bytes) -> list[ChatChunk]:
        """The chunks of every line completed by ``data``."""
        self._buffer += data
        out: list[ChatChunk] = []
        while (end := self._buffer.find(b"\n")) != -1:
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            out.extend(self.feed_line(line))
        return out

    def close(self) -> list[ChatChunk]:
        """The chunks of a last line left without its newline when the stream ended."""
        line, self._buffer = self._buffer, b""
        return self.feed_line(line)

    def feed_line(self, line: bytes) -> list[ChatChunk]:
        """The chunks carried by one NDJSON line (blank lines carry none)."""
        if not line.strip():
            return []
        try:
            body = json.loads(line)
        except ValueError:
            raise UpstreamUnavailable(
                f"{self.provider} sent a stream line that is not JSON", provider=self.provider
            ) from None
        if not isinstance(body, dict):
            return []
        if body.get("error"):
            raise decode_error(500, body, {}, self.provider)
        message = body.get("message")
        out = self._deltas(message) if isinstance(message, dict) else []
        if body.get("done"):
            out.append(ChatChunk(finish_reason=_finish(body.get("done_reason"), self._calls > 0)))
            out.append(ChatChunk(usage=_usage(body)))
        if out and not self._head_sent:
            self._head_sent = True
            out[0] = replace(out[0], model=str(body["model"]) if body.get("model") else None)
        return out

    def _deltas(self, message: dict[str, Any]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        if isinstance(message.get("thinking"), str) and message["thinking"]:
            out.append(ChatChunk(thinking=message["thinking"]))
        if isinstance(message.get("content"), str) and message["content"]:
            out.append(ChatChunk(text=message["content"]))
        for raw in _raw_calls(message):
            call_id, name, arguments = _call_fields(raw, self._calls)
            out.append(ChatChunk(tool_call=ToolCallDelta(self._calls, call_id, name, arguments)))
            self._calls += 1
        return out


def _error_message(body: Any) -> str | None:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):  # Ollama's OpenAI-compatible endpoints nest it
        err = err.get("message")
    return err if isinstance(err, str) and err else None


def decode_error(status: int, body: Any, headers: dict[str, str], provider: str) -> ProviderError:
    """Map an Ollama error answer (``{"error": "message"}``) to the gateway's hierarchy."""
    message = _error_message(body) or f"upstream HTTP {status}"
    return error_for_status(status, message, headers, provider)


def decode_tags(body: Any) -> list[str]:
    """The model names (``models[].name``) from ``GET /api/tags``."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        return []
    return [m["name"] for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)]
