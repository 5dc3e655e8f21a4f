"""A simulated Ollama server, speaking the native API: ``POST /api/chat`` and ``GET /api/tags``.

Like the real server, ``/api/chat`` streams unless the body says ``"stream": false``: NDJSON
(``application/x-ndjson``), one ``{"model", "created_at", "message", "done": false}`` object per
token, then a ``"done": true`` object with ``done_reason``, the durations (nanoseconds) and the
token counts ``prompt_eval_count`` / ``eval_count``. Tool calls carry their arguments as objects
and no ids. Errors are ``{"error": "…"}``; an unknown model is a 404. Replies come from
:func:`~meterline.sim.replies.plan_reply`; failures (kinds ``http`` and ``drop_mid_stream``) are
scripted with :meth:`OllamaSim.fail_next`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from typing import Any

import orjson
from aiohttp import web

from meterline.sim.replies import Reply, plan_reply
from meterline.sim.server import SimServer
from meterline.sim.settings import Fault, SimSettings
from meterline.types import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["OLLAMA_MODELS", "OllamaSim", "chat_request"]

OLLAMA_MODELS = ("llama3.2:latest", "qwen2.5:7b", "llava:latest")
_ROLES: dict[str, Role] = {"system": "system", "assistant": "assistant", "tool": "tool"}
_FAULT_MESSAGES = {
    429: "too many requests, please slow down",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}
_NS_PER_PROMPT_TOKEN = 400_000  # 0.4 ms a prompt token
_NS_PER_TOKEN = 20_000_000  # 50 tokens/s


def _tag(name: str) -> str:
    """Ollama's full model name: ``llama3.2`` means ``llama3.2:latest``."""
    return name if ":" in name else f"{name}:latest"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"error": message}),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _now() -> str:
    """A Go ``time.RFC3339Nano`` UTC timestamp, as Ollama writes ``created_at``."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}123Z"


# The incoming /api/chat body, read back into the internal request plan_reply works on.


def _message(raw: dict[str, Any]) -> Message:
    role = _ROLES.get(raw.get("role", ""), "user")
    content = raw.get("content") or ""
    if role == "tool":
        result = ToolResultPart(raw.get("tool_name", ""), (TextPart(content),))
        return Message("tool", (result,))
    parts: list[ContentPart] = [TextPart(content)] if content else []
    parts += [ImagePart(data=image) for image in raw.get("images") or ()]
    for call in raw.get("tool_calls") or ():
        fn = call.get("function") or {}
        name = str(fn.get("name", ""))
        parts.append(ToolCallPart(name, name, json.dumps(fn.get("arguments"))))
    return Message(role, tuple(parts))


def chat_request(body: dict[str, Any]) -> ChatRequest:
    """The :class:`ChatRequest` an ``/api/chat`` body asks for (what the sim answers)."""
    tools = [t.get("function") or {} for t in body.get("tools") or ()]
    options = body.get("options") or {}
    return ChatRequest(
        model=str(body["model"]),
        messages=tuple(_message(m) for m in body.get("messages") or ()),
        tools=tuple(
            Tool(f.get("name", ""), f.get("description"), f.get("parameters") or {}) for f in tools
        ),  # fmt: skip
        max_tokens=options.get("num_predict"),
        response_format=ResponseFormat("json_object") if body.get("format") else None,
    )


# The answer.


def _stats(reply: Reply) -> dict[str, Any]:
    prompt_ns = reply.prompt_tokens * _NS_PER_PROMPT_TOKEN
    eval_ns = reply.completion_tokens * _NS_PER_TOKEN
    load_ns = 5_000_000
    return {
        "done_reason": "length" if reply.finish_reason == "length" else "stop",
        "total_duration": load_ns + prompt_ns + eval_ns + 1_000_000,
        "load_duration": load_ns,
        "prompt_eval_count": reply.prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": reply.completion_tokens,
        "eval_duration": eval_ns,
    }


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"function": {"index": i, "name": c.name, "arguments": orjson.loads(c.arguments)}}
            for i, c in enumerate(reply.tool_calls)]  # fmt: skip


def _answer(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    return {"model": model, "created_at": _now(), "message": message, "done": True,
            **_stats(reply)}  # fmt: skip


def _lines(model: str, reply: Reply) -> list[dict[str, Any]]:
    """The objects of a streamed answer: one per token piece, tool calls, then the final one."""

    def line(message: dict[str, Any]) -> dict[str, Any]:
        message = {"role": "assistant", "content": "", **message}
        return {"model": model, "created_at": _now(), "message": message, "done": False}

    lines = [line({"content": piece}) for piece in reply.pieces]
    if reply.tool_calls:
        lines.append(line({"tool_calls": _tool_calls(reply)}))
    final = line({})
    final.update(done=True, **_stats(reply))
    return [*lines, final]


class OllamaSim(SimServer[Fault]):
    """The simulated Ollama server; ``base_url`` is the server root (as ``OLLAMA_BASE_URL``)."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        super().__init__(settings or SimSettings(models=OLLAMA_MODELS))
        self.tags_requests = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self.chat)
        app.router.add_get("/api/tags", self.tags)

    async def tags(self, request: web.Request) -> web.Response:
        self.tags_requests += 1
        models = [{"name": m, "model": m, "modified_at": "2025-06-01T10:00:00.000000000Z",
                   "size": 2019393189, "digest": hashlib.sha256(m.encode()).hexdigest(),
                   "details": {"parent_model": "", "format": "gguf", "family": "llama",
                               "families": ["llama"], "parameter_size": "3.2B",
                               "quantization_level": "Q4_K_M"}}
                  for m in self.settings.models]  # fmt: skip
        return web.json_response({"models": models}, dumps=lambda v: orjson.dumps(v).decode())

    async def _read(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "invalid character looking for beginning of value")
        self.received.append(body)
        self.received_headers.append(dict(request.headers))
        if not isinstance(body, dict) or not body.get("model"):
            return _error(400, "model is required")
        if _tag(str(body["model"])) not in self.settings.models:
            return _error(404, f"model '{body['model']}' not found")
        return body

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        fault = self.faults.popleft() if self.faults else None
        if fault is not None and fault.kind == "http":
            headers = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            message = fault.message or _FAULT_MESSAGES.get(fault.status, _FAULT_MESSAGES[500])
            return _error(fault.status, message, headers)
        reply = plan_reply(chat_request(body), lambda text, tokens: 0)
        await asyncio.sleep(self.settings.ttft)
        model = _tag(str(body["model"]))
        if body.get("stream", True):
            return await self._stream(request, _lines(model, reply), fault)
        return web.json_response(_answer(model, reply), dumps=lambda v: orjson.dumps(v).decode())

    async def _stream(
        self, request: web.Request, lines: list[dict[str, Any]], fault: Fault | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            for i, line in enumerate(lines):
                if fault is not None and fault.kind == "drop_mid_stream" and i == len(lines) // 2:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(orjson.dumps(line) + b"\n")
                await asyncio.sleep(self.settings.per_token)
            await response.write_eof()
        except ConnectionResetError:
            self.cancelled_streams += 1  # the client left; Ollama stops generating
            return response
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        self.completed_streams += 1
        return response
