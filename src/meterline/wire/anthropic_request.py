"""Anthropic Messages requests ⇄ :class:`ChatRequest`. Pure functions, no I/O.

``decode_request`` validates what a client sent to ``POST /v1/messages`` (errors name the
offending field); ``encode_request`` builds the body the Anthropic API expects, from a request
that may have arrived in any wire format.

Anthropic keeps tool results inside user turns and the system prompt outside ``messages``; the
internal types keep both as messages (see :mod:`meterline.types`). Decoding splits each
``tool_result`` block out into a ``role="tool"`` message; encoding merges them back and merges
adjacent same-role turns, because Anthropic requires user and assistant turns to alternate.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

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
    "model", "messages", "max_tokens", "system", "stream", "stop_sequences", "temperature",
    "top_p", "tools", "tool_choice", "metadata",
}  # fmt: skip
_CHOICES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}
_DEFAULT_MAX_TOKENS = 4096


def _expect(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(message, param=param)


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    _expect(
        isinstance(value, int | float) and not isinstance(value, bool),
        f"{name}: must be a number",
        name,
    )
    return float(value)


def _compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _string(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    _expect(isinstance(value, str), f"{where}.{name}: must be a string", f"{where}.{name}")
    return str(value)


# Decoding: a client's Anthropic body → ChatRequest.


def _image(block: dict[str, Any], where: str) -> ImagePart:
    source = block.get("source")
    _expect(isinstance(source, dict), f"{where}.source: must be an object", f"{where}.source")
    assert isinstance(source, dict)
    kind = source.get("type")
    if kind == "base64":
        data = _string(source, "data", f"{where}.source")
        return ImagePart(data=data, media_type=source.get("media_type"))
    if kind == "url":
        return ImagePart(url=_string(source, "url", f"{where}.source"))
    raise InvalidRequest(
        f"{where}.source.type: must be base64 or url (got {kind!r})", param=f"{where}.source.type"
    )


def _result_content(raw: Any, where: str) -> list[TextPart | ImagePart | OpaquePart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(raw)]
    _expect(isinstance(raw, list), f"{where}: must be a string or a list of blocks", where)
    parts: list[TextPart | ImagePart | OpaquePart] = []
    for i, block in enumerate(raw):
        at = f"{where}[{i}]"
        _expect(isinstance(block, dict), f"{at}: each block must be an object", at)
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(_string(block, "text", at), block.get("cache_control")))
        elif kind == "image":
            parts.append(_image(block, at))
        else:  # document, search_result…: passed on as they are (Anthropic checks them)
            parts.append(_opaque(block, at))
    return parts


def _opaque(block: dict[str, Any], where: str) -> OpaquePart:
    _expect(isinstance(block.get("type"), str), f"{where}.type: Field required", f"{where}.type")
    return OpaquePart("anthropic", block)


def _tool_result(block: dict[str, Any], where: str) -> Message:
    """One ``tool_result`` block as a ``role="tool"`` message.

    The block's own ``cache_control`` has no home in :class:`ToolResultPart`, so it rides on
    the last text part of the content (an empty one is added if needed); ``encode_request``
    moves it back onto the block.
    """
    call_id = _string(block, "tool_use_id", where)
    content = _result_content(block.get("content"), f"{where}.content")
    cache = block.get("cache_control")
    if cache is not None:
        last = content[-1] if content else None
        if isinstance(last, TextPart) and last.cache_control is None:
            content[-1] = TextPart(last.text, cache)
        else:
            content.append(TextPart("", cache))
    is_error = block.get("is_error", False)
    _expect(isinstance(is_error, bool), f"{where}.is_error: must be a boolean", f"{where}.is_error")
    return Message("tool", (ToolResultPart(call_id, tuple(content), bool(is_error)),))


def _tool_use(block: dict[str, Any], where: str) -> ToolCallPart:
    arguments = block.get("input", {})
    _expect(isinstance(arguments, dict), f"{where}.input: must be an object", f"{where}.input")
    return ToolCallPart(
        _string(block, "id", where), _string(block, "name", where), _compact_json(arguments)
    )


def _thinking(block: dict[str, Any], where: str) -> ThinkingPart:
    if block.get("type") == "redacted_thinking":
        return ThinkingPart(_string(block, "data", where), redacted=True)
    signature = block.get("signature")
    _expect(
        signature is None or isinstance(signature, str),
        f"{where}.signature: must be a string",
        f"{where}.signature",
    )
    return ThinkingPart(_string(block, "thinking", where), signature)


_ASSISTANT_ONLY = {"tool_use", "thinking", "redacted_thinking"}


def _block(block: Any, role: str, where: str) -> ContentPart | Message:
    """One content block: a part of the message, or (``tool_result``) a tool message."""
    _expect(isinstance(block, dict), f"{where}: each content block must be an object", where)
    kind = block.get("type")
    _expect(
        kind not in _ASSISTANT_ONLY or role == "assistant",
        f"{where}.type: {kind} blocks belong in assistant messages",
        f"{where}.type",
    )
    _expect(
        kind != "tool_result" or role == "user",
        f"{where}.type: tool_result blocks belong in user messages",
        f"{where}.type",
    )
    if kind == "text":
        return TextPart(_string(block, "text", where), block.get("cache_control"))
    if kind == "image":
        return _image(block, where)
    if kind == "tool_use":
        return _tool_use(block, where)
    if kind == "tool_result":
        return _tool_result(block, where)
    if kind in ("thinking", "redacted_thinking"):
        return _thinking(block, where)
    # document, search_result, server tool use and results, container uploads, and whatever
    # the API adds later: passed on as they are to Anthropic upstreams, which check them.
    return _opaque(block, where)


def _message(raw: Any, where: str) -> list[Message]:
    """One Anthropic message: its tool results (as tool messages) first, then the rest."""
    _expect(isinstance(raw, dict), f"{where}: each message must be an object", where)
    role = raw.get("role")
    _expect(
        role in ("user", "assistant"),
        f"{where}.role: must be user or assistant (got {role!r})",
        f"{where}.role",
    )
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role, (TextPart(content),))]
    _expect(
        isinstance(content, list),
        f"{where}.content: must be a string or a list of content blocks",
        f"{where}.content",
    )
    tools: list[Message] = []
    parts: list[ContentPart] = []
    for i, block in enumerate(content):
        decoded = _block(block, role, f"{where}.content[{i}]")
        if isinstance(decoded, Message):
            tools.append(decoded)
        else:
            parts.append(decoded)
    if parts or not tools:
        tools.append(Message(role, tuple(parts)))
    return tools


def _system(raw: Any) -> list[Message]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        return [Message("system", (TextPart(raw),))]
    _expect(isinstance(raw, list), "system: must be a string or a list of text blocks", "system")
    parts: list[ContentPart] = []
    for i, block in enumerate(raw):
        at = f"system[{i}]"
        _expect(
            isinstance(block, dict) and block.get("type") == "text",
            f"{at}: system blocks must be text blocks",
            at,
        )
        parts.append(TextPart(_string(block, "text", at), block.get("cache_control")))
    return [Message("system", tuple(parts))] if parts else []


def _tools(raw: Any) -> tuple[Tool, ...]:
    _expect(isinstance(raw, list), "tools: must be a list", "tools")
    tools = []
    for i, tool in enumerate(raw):
        at = f"tools[{i}]"
        _expect(isinstance(tool, dict), f"{at}: each tool must be an object", at)
        kind = tool.get("type")
        if kind not in (None, "custom"):  # a server tool (web search, code execution…)
            _expect(isinstance(kind, str), f"{at}.type: must be a string", f"{at}.type")
            tools.append(Tool(str(tool.get("name") or kind), raw=tool))
            continue
        schema = tool.get("input_schema", {})
        _expect(
            isinstance(schema, dict), f"{at}.input_schema: must be an object", f"{at}.input_schema"
        )
        description = tool.get("description")
        _expect(
            description is None or isinstance(description, str),
            f"{at}.description: must be a string",
            f"{at}.description",
        )
        strict = tool.get("strict")
        tools.append(
            Tool(
                _string(tool, "name", at),
                description,
                schema,
                strict if isinstance(strict, bool) else None,
                tool.get("cache_control"),
            )
        )
    return tuple(tools)


def _tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    """The tool choice and ``parallel_tool_calls`` (from ``disable_parallel_tool_use``)."""
    if raw is None:
        return None, None
    kind = raw.get("type") if isinstance(raw, dict) else None
    _expect(kind in _CHOICES, "tool_choice.type: must be auto, any, tool or none", "tool_choice")
    assert isinstance(raw, dict)
    choice = ToolChoice(_CHOICES[str(kind)])  # type: ignore[arg-type]
    if kind == "tool":
        choice = ToolChoice("tool", _string(raw, "name", "tool_choice"))
    disable = raw.get("disable_parallel_tool_use")
    if disable is None:
        return choice, None
    _expect(
        isinstance(disable, bool),
        "tool_choice.disable_parallel_tool_use: must be a boolean",
        "tool_choice.disable_parallel_tool_use",
    )
    return choice, not disable


def _stop_sequences(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    _expect(
        isinstance(raw, list) and all(isinstance(s, str) for s in raw),
        "stop_sequences: must be a list of strings",
        "stop_sequences",
    )
    return tuple(raw)


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    _expect(isinstance(raw, dict), "metadata: must be an object", "metadata")
    assert isinstance(raw, dict)
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def _max_tokens(body: dict[str, Any]) -> int:
    value = body.get("max_tokens")
    _expect(value is not None, "max_tokens: Field required", "max_tokens")
    _expect(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        "max_tokens: must be a positive integer",
        "max_tokens",
    )
    assert isinstance(value, int)
    return value


def _check_extra(body: dict[str, Any]) -> None:
    top_k = body.get("top_k")
    _expect(
        top_k is None or (isinstance(top_k, int) and not isinstance(top_k, bool) and top_k >= 0),
        "top_k: must be a non-negative integer",
        "top_k",
    )
    thinking = body.get("thinking")
    _expect(
        thinking is None or (isinstance(thinking, dict) and isinstance(thinking.get("type"), str)),
        "thinking: must be an object with a type",
        "thinking.type",
    )


def decode_request(body: Any, wire_headers: dict[str, str] | None = None) -> ChatRequest:
    """Validate an Anthropic ``/v1/messages`` body into a :class:`ChatRequest`.

    ``top_k``, ``thinking`` and every other field the internal type does not model land in
    ``extra``; Anthropic streams always report usage, so ``include_usage`` is set.
    ``wire_headers``: the client's headers an Anthropic upstream takes (``anthropic-beta``).
    """
    _expect(isinstance(body, dict), "the request body must be a JSON object", "body")
    model = body.get("model")
    _expect(isinstance(model, str) and bool(model), "model: Field required", "model")
    raw_messages = body.get("messages")
    _expect(
        isinstance(raw_messages, list) and bool(raw_messages),
        "messages: must be a non-empty list",
        "messages",
    )
    max_tokens = _max_tokens(body)
    _check_extra(body)
    stream = body.get("stream", False)
    _expect(isinstance(stream, bool), "stream: must be a boolean", "stream")
    messages = _system(body.get("system"))
    for i, raw in enumerate(raw_messages):
        messages.extend(_message(raw, f"messages[{i}]"))
    tool_choice, parallel = _tool_choice(body.get("tool_choice"))
    metadata = _metadata(body.get("metadata"))
    tools = _tools(body["tools"]) if body.get("tools") else ()
    return ChatRequest(
        model=str(model),
        messages=tuple(messages),
        stream=bool(stream),
        include_usage=True,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        stop=_stop_sequences(body.get("stop_sequences")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        user=metadata.get("user_id"),
        metadata=metadata,
        extra={k: v for k, v in body.items() if k not in _KNOWN},
        wire="anthropic",
        opaque=first_opaque(tuple(messages), tools),
        wire_headers=wire_headers or {},
    )


# Encoding: ChatRequest → the body the Anthropic API expects.

_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")


def _tool_id(raw: str) -> str:
    """Anthropic's tool ids match ``^[a-zA-Z0-9_-]+$``; other upstreams' ids may not."""
    return _TOOL_ID.sub("_", raw)


def _arguments(text: str) -> dict[str, Any]:
    """The tool call's ``input`` object; anything but a JSON object becomes ``{}``."""
    try:
        value = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _encode_image(part: ImagePart) -> dict[str, Any]:
    url = part.url
    if url is not None and url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        part = ImagePart(data=data, media_type=header or None)
        url = None
    if url is not None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    return {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": part.media_type or "image/png",
            "data": part.data or "",
        },
    }


def _encode_text(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _encode_result(part: ToolResultPart) -> dict[str, Any]:
    content = list(part.content)
    cache: dict[str, Any] | None = None
    last = content[-1] if content else None
    if isinstance(last, TextPart) and last.cache_control is not None:
        cache = last.cache_control
        content[-1] = TextPart(last.text)
    content = [p for p in content if not (isinstance(p, TextPart) and not p.text)]
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(part.tool_call_id)}
    if content and all(isinstance(p, TextPart) and p.cache_control is None for p in content):
        block["content"] = "".join(p.text for p in content if isinstance(p, TextPart))
    elif content:
        block["content"] = [
            _encode_text(p) if isinstance(p, TextPart)
            else _encode_image(p) if isinstance(p, ImagePart) else p.raw
            for p in content
        ]  # fmt: skip
    if part.is_error:
        block["is_error"] = True
    if cache is not None:
        block["cache_control"] = cache
    return block


def _encode_thinking(part: ThinkingPart) -> dict[str, Any] | None:
    """A thinking block; unsigned thinking (another vendor's reasoning) cannot be sent back."""
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.text}
    if not part.signature:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _encode_part(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return _encode_text(part) if part.text else None
    if isinstance(part, ImagePart):
        return _encode_image(part)
    if isinstance(part, ThinkingPart):
        return _encode_thinking(part)
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": _tool_id(part.id),
            "name": part.name,
            "input": _arguments(part.arguments),
        }
    if isinstance(part, OpaquePart):
        return part.raw
    return _encode_result(part)


def _encode_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Alternating user/assistant turns; tool messages become user turns of tool results."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for b in map(_encode_part, message.parts) if b is not None]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool results must open the user turn that carries them
            blocks = turn["content"]
            turn["content"] = [b for b in blocks if b["type"] == "tool_result"] + [
                b for b in blocks if b["type"] != "tool_result"
            ]
    return turns


def _json_instruction(fmt: ResponseFormat) -> str:
    text = "Respond with a single JSON object and nothing else: no prose, no code fences."
    if fmt.type == "json_schema" and fmt.json_schema:
        schema = fmt.json_schema.get("schema", fmt.json_schema)
        text += f"\nThe JSON object must conform to this JSON schema:\n{_compact_json(schema)}"
    return text


def _encode_system(request: ChatRequest) -> str | list[dict[str, Any]] | None:
    """Every system message, wherever it is, as the top-level ``system``.

    A single block without ``cache_control`` is sent as a plain string; several blocks stay
    blocks so their boundaries and cache breakpoints survive.
    """
    parts = [
        p
        for m in request.messages
        if m.role == "system"
        for p in m.parts
        if isinstance(p, TextPart) and p.text
    ]
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_object", "json_schema"):
        parts.append(TextPart(_json_instruction(fmt)))
    if not parts:
        return None
    if len(parts) == 1 and parts[0].cache_control is None:
        return parts[0].text
    return [_encode_text(p) for p in parts]


def _encode_tool(tool: Tool, passthrough: bool) -> dict[str, Any]:
    if tool.raw is not None:
        return tool.raw
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters or {"type": "object"}
    if passthrough and tool.strict is not None:
        out["strict"] = tool.strict
    if tool.cache_control is not None:
        out["cache_control"] = tool.cache_control
    return out


def _encode_tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if not request.tools or (choice is None and request.parallel_tool_calls is not False):
        return None
    mode = choice.mode if choice is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    out: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "tool": "tool"}[mode]}
    if choice is not None and mode == "tool":
        out["name"] = choice.name
    if request.parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    return out


def encode_request(request: ChatRequest, *, passthrough: bool = True) -> dict[str, Any]:
    """The Anthropic body for ``request``; ``extra`` fields are kept when ``passthrough``.

    Pass ``passthrough=False`` for requests that arrived in another wire format: their
    ``extra`` holds that format's fields, which Anthropic would reject.
    """
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": (
            request.max_tokens if request.max_tokens is not None else _DEFAULT_MAX_TOKENS
        ),
        "messages": _encode_messages(request.messages),
    }
    if passthrough:
        body.update(request.extra)
    system = _encode_system(request)
    if system is not None:
        body["system"] = system
    if request.stream:
        body["stream"] = True
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [_encode_tool(t, passthrough) for t in request.tools]
    choice = _encode_tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    if request.user:
        body["metadata"] = {"user_id": request.user}
    return body
