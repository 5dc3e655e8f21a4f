"""OpenAI Chat Completions requests ⇄ :class:`ChatRequest`. Pure functions, no I/O.

``decode_request`` validates what a client sent (errors name the offending field);
``encode_request`` builds the body an OpenAI-compatible upstream expects.
"""

from __future__ import annotations

from typing import Any

from meterline.errors import InvalidRequest
from meterline.types import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    OpaquePart,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    first_opaque,
)

__all__ = ["decode_request", "encode_request"]

_KNOWN = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "stop", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "seed", "presence_penalty", "frequency_penalty", "user", "metadata",
}  # fmt: skip
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool"}  # fmt: skip


def _expect(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(message, param=param)


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    _expect(
        isinstance(value, int | float) and not isinstance(value, bool),
        f"'{name}' must be a number",
        name,
    )
    return float(value)


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    _expect(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        f"'{name}' must be a non-negative integer",
        name,
    )
    return int(value)


def _image(raw: Any, where: str) -> ImagePart:
    _expect(
        isinstance(raw, dict) and isinstance(raw.get("url"), str), "missing image_url.url", where
    )
    url: str = raw["url"]
    detail = raw.get("detail")
    if url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        return ImagePart(data=data, media_type=header or None, detail=detail)
    return ImagePart(url=url, detail=detail)


def _parts(content: Any, message: str) -> tuple[TextPart | ImagePart | OpaquePart, ...]:
    """A message's content; ``message``: where the message is (``messages[2]``)."""
    if isinstance(content, str):
        return (TextPart(content),)
    if content is None:
        return ()
    where = f"{message}.content"
    _expect(isinstance(content, list), "'content' must be a string or a list of parts", where)
    parts: list[TextPart | ImagePart | OpaquePart] = []
    for i, part in enumerate(content):
        at = f"{where}[{i}]"
        _expect(isinstance(part, dict), "each content part must be an object", at)
        kind = part.get("type")
        if kind == "text":
            _expect(isinstance(part.get("text"), str), "text part needs a string 'text'", at)
            parts.append(TextPart(part["text"], part.get("cache_control")))
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), f"{at}.image_url"))
        else:  # file, input_audio…: passed on as they are to OpenAI-format upstreams
            _expect(isinstance(kind, str), "each content part needs a 'type'", f"{at}.type")
            parts.append(OpaquePart("openai", part))
    return tuple(parts)


def _tool_calls(raw: Any, where: str) -> list[ToolCallPart]:
    _expect(isinstance(raw, list), "'tool_calls' must be a list", where)
    calls = []
    for i, call in enumerate(raw):
        at = f"{where}[{i}]"
        fn = call.get("function") if isinstance(call, dict) else None
        _expect(isinstance(fn, dict) and isinstance(fn.get("name"), str), "needs function.name", at)
        assert isinstance(fn, dict)
        args = fn.get("arguments", "")
        calls.append(
            ToolCallPart(str(call.get("id", "")), fn["name"], args if isinstance(args, str) else "")
        )
    return calls


def _message(raw: Any, where: str) -> Message:
    _expect(isinstance(raw, dict), "each message must be an object", where)
    role = _ROLES.get(raw.get("role"))
    if role is None:  # (the message is built only when needed: this runs for every message)
        raise InvalidRequest(
            f"'role' must be one of system, developer, user, assistant, tool "
            f"(got {raw.get('role')!r})",
            param=f"{where}.role",
        )
    content = _parts(raw.get("content"), where)
    if role == "tool":
        call_id = raw.get("tool_call_id")
        _expect(
            isinstance(call_id, str), "a tool message needs 'tool_call_id'", f"{where}.tool_call_id"
        )
        return Message("tool", (ToolResultPart(str(call_id), content),))
    parts: list[ContentPart] = []
    if role == "assistant" and isinstance(raw.get("reasoning_content"), str):
        parts.append(ThinkingPart(raw["reasoning_content"]))
    parts.extend(content)
    if role == "assistant" and raw.get("tool_calls"):
        parts.extend(_tool_calls(raw["tool_calls"], f"{where}.tool_calls"))
    elif role != "assistant" and "content" not in raw:
        raise InvalidRequest("a message needs 'content'", param=f"{where}.content")
    return Message(role, tuple(parts), name=raw.get("name"))  # type: ignore[arg-type]


def _tools(raw: Any) -> tuple[Tool, ...]:
    _expect(isinstance(raw, list), "'tools' must be a list", "tools")
    tools = []
    for i, tool in enumerate(raw):
        kind = tool.get("type", "function") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind != "function":  # a custom tool and the like
            named = tool.get(kind)
            name = named.get("name") if isinstance(named, dict) else None
            tools.append(Tool(str(name or kind), raw=tool))
            continue
        fn = tool.get("function") if isinstance(tool, dict) else None
        _expect(
            isinstance(fn, dict) and isinstance(fn.get("name"), str),
            "each tool needs function.name",
            f"tools[{i}].function.name",
        )
        assert isinstance(fn, dict)
        tools.append(
            Tool(
                fn["name"],
                fn.get("description"),
                fn.get("parameters") or {},
                fn.get("strict"),
                tool.get("cache_control"),
            )
        )
    return tuple(tools)


def _tool_choice(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    fn = raw.get("function") if isinstance(raw, dict) else None
    _expect(
        isinstance(fn, dict) and isinstance(fn.get("name"), str),
        "'tool_choice' must be auto, none, required or {type: function, function: {name}}",
        "tool_choice",
    )
    assert isinstance(fn, dict)
    return ToolChoice("tool", fn["name"])


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    _expect(
        kind in ("text", "json_object", "json_schema"),
        "'response_format.type' must be text, json_object or json_schema",
        "response_format.type",
    )
    return ResponseFormat(kind, raw.get("json_schema"))  # type: ignore[arg-type]


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    _expect(
        isinstance(raw, list) and all(isinstance(s, str) for s in raw),
        "'stop' must be a string or a list of strings",
        "stop",
    )
    return tuple(raw)


def decode_request(body: Any) -> ChatRequest:
    """Validate an OpenAI ``/v1/chat/completions`` body into a :class:`ChatRequest`."""
    _expect(isinstance(body, dict), "the request body must be a JSON object", "body")
    model = body.get("model")
    _expect(isinstance(model, str) and bool(model), "you must provide a model parameter", "model")
    raw_messages = body.get("messages")
    _expect(
        isinstance(raw_messages, list) and bool(raw_messages),
        "'messages' must be a non-empty list",
        "messages",
    )
    choices = _integer(body, "n")
    _expect(choices is None or 1 <= choices <= 128, "'n' must be between 1 and 128", "n")
    options = body.get("stream_options") or {}
    metadata = body.get("metadata") or {}
    _expect(isinstance(metadata, dict), "'metadata' must be an object", "metadata")
    max_tokens = _integer(body, "max_completion_tokens")
    messages = tuple(_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
    tools = _tools(body["tools"]) if body.get("tools") else ()
    opaque = first_opaque(messages, tools)
    if opaque is None and choices is not None and choices > 1:
        opaque = f"n={choices} (several choices)"  # only an OpenAI-format upstream gives them
    return ChatRequest(
        model=str(model),
        messages=messages,
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        max_tokens=max_tokens if max_tokens is not None else _integer(body, "max_tokens"),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        stop=_stop(body.get("stop")),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=body.get("parallel_tool_calls"),
        response_format=_response_format(body.get("response_format")),
        seed=_integer(body, "seed"),
        presence_penalty=_number(body, "presence_penalty"),
        frequency_penalty=_number(body, "frequency_penalty"),
        user=body.get("user") if isinstance(body.get("user"), str) else None,
        metadata={str(k): str(v) for k, v in metadata.items()},
        extra={k: v for k, v in body.items() if k not in _KNOWN},
        wire="openai",
        opaque=opaque,
    )


# Encoding: ChatRequest → the body an OpenAI-compatible upstream expects.


def _encode_content(parts: tuple[ContentPart, ...]) -> str | list[dict[str, Any]] | None:
    visible = [p for p in parts if isinstance(p, TextPart | ImagePart | OpaquePart)]
    if not visible:
        return None
    if all(isinstance(p, TextPart) and p.cache_control is None for p in visible):
        return "".join(p.text for p in visible if isinstance(p, TextPart))
    out: list[dict[str, Any]] = []
    for p in visible:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        elif isinstance(p, OpaquePart):
            out.append(p.raw)
        else:
            image: dict[str, Any] = {"url": p.data_url}
            if p.detail:
                image["detail"] = p.detail
            out.append({"type": "image_url", "image_url": image})
    return out


def _encode_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        result = next(p for p in message.parts if isinstance(p, ToolResultPart))
        return {
            "role": "tool",
            "tool_call_id": result.tool_call_id,
            "content": _encode_content(result.content) or "",
        }
    out: dict[str, Any] = {"role": message.role, "content": _encode_content(message.parts)}
    if message.name:
        out["name"] = message.name
    calls = message.tool_calls
    if calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    elif out["content"] is None:
        out["content"] = ""
    return out


def _encode_tool(tool: Tool) -> dict[str, Any]:
    if tool.raw is not None:
        return tool.raw
    fn: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters or {"type": "object"}}
    if tool.description is not None:
        fn["description"] = tool.description
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def encode_request(
    request: ChatRequest, *, max_tokens_field: str = "max_tokens", passthrough: bool = True
) -> dict[str, Any]:
    """The upstream body for ``request``; ``extra`` fields are kept when ``passthrough``."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_encode_message(m) for m in request.messages],
    }
    if passthrough:
        body.update(request.extra)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "user",
                 "parallel_tool_calls"):  # fmt: skip
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = [_encode_tool(t) for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}}
            if choice.mode == "tool"
            else choice.mode
        )
    if request.response_format is not None:
        fmt: dict[str, Any] = {"type": request.response_format.type}
        if request.response_format.json_schema is not None:
            fmt["json_schema"] = request.response_format.json_schema
        body["response_format"] = fmt
    return body
