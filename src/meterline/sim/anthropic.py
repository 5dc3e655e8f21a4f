"""A simulated Anthropic Messages API server, speaking Anthropic's wire format.

The counterpart of :mod:`meterline.sim.openai`: ``POST /v1/messages`` (a message object, or an
SSE stream with Anthropic's event sequence), ``POST /v1/messages/count_tokens``,
``GET /v1/models``, Anthropic's error bodies, ``request-id`` and ``anthropic-ratelimit-*``
headers. Replies come from :func:`~meterline.sim.replies.plan_reply`, with real token counts.

Prompt caching works as Anthropic documents it: a block with ``cache_control`` ends a cacheable
prefix (tools, then system, then messages). A prefix of at least ``cache_min_tokens`` that was
seen before is read from the cache, the rest up to the last breakpoint is written to it, and
``usage.input_tokens`` counts only what follows the last breakpoint.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any

import orjson
from aiohttp import web

from meterline.errors import InvalidRequest
from meterline.sim.replies import Reply, last_user_text, plan_reply
from meterline.sim.server import SimServer
from meterline.sim.settings import Fault, SimSettings
from meterline.tokens import count_text
from meterline.types import ChatRequest, ResponseFormat
from meterline.wire.anthropic_request import decode_request
from meterline.wire.anthropic_response import frame

__all__ = ["ANTHROPIC_MODELS", "AnthropicSim", "ErrorEvent"]

Event = tuple[str, dict[str, Any]]
Mark = tuple[int, str]  # (prefix tokens, prefix key) of one cache breakpoint
Block = tuple[dict[str, Any], list[dict[str, Any]]]  # a whole content block, its deltas

_MODELS = {
    "claude-opus-4-1": ("Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    "claude-sonnet-4-5": ("Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    "claude-haiku-4-5": ("Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
    "claude-3-5-haiku-latest": ("Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
}
ANTHROPIC_MODELS = tuple(_MODELS)
_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization "
          "of 50 requests per minute. See https://docs.claude.com/en/api/rate-limits."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}  # fmt: skip
_STATUS = {kind: status for status, (kind, _) in _ERRORS.items()}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_ORGANIZATION = "4b9e2c1a-7f3d-4e8a-9c5b-0d1e2f3a4b5c"
_SAMPLING = ("temperature", "top_p", "top_k")
_PER_MESSAGE = 3
_REPLY_PRIMING = 3
_IMAGE_TOKENS = 85


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """A scripted ``error`` event in a stream, sent in place of event number ``after``
    (1: right after ``message_start``, before any content). A non-streamed request gets the
    error's HTTP status instead."""

    kind: str = "overloaded_error"
    message: str = "Overloaded"
    after: int = 1


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


def _headers(remaining: int = 49) -> dict[str, str]:
    """``request-id``, the organization and the ``anthropic-ratelimit-*`` family."""
    reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"request-id": f"req_{secrets.token_hex(12)}",
               "anthropic-organization-id": _ORGANIZATION}  # fmt: skip
    limits = {"requests": (50, remaining), "input-tokens": (2_000_000, 1_999_000),
              "output-tokens": (400_000, 399_000), "tokens": (2_400_000, 2_398_000)}  # fmt: skip
    for name, (limit, left) in limits.items():
        headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(left if remaining else 0)
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    return headers


def _error(status: int, message: str | None = None, **extra: str) -> web.Response:
    kind, default = _ERRORS.get(status, _ERRORS[500 if status >= 500 else 400])
    headers = {**_headers(0 if status == 429 else 49), **extra}
    body = {"type": "error", "error": {"type": kind, "message": message or default},
            "request_id": headers["request-id"]}  # fmt: skip
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _tokens(block: Any, model: str) -> int:
    """Prompt tokens of one block (a tool definition, a system or message block, or text)."""
    if isinstance(block, str):
        return count_text(block, model)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind in ("image", "document"):
        return _IMAGE_TOKENS
    if kind == "tool_result":
        content = block.get("content")
        return sum(_tokens(b, model) for b in (content if isinstance(content, list) else [content]))
    if kind == "tool_use" or "input_schema" in block:
        fields = ("name", "description", "input", "input_schema")
        return count_text(_dumps({k: block[k] for k in fields if k in block}), model)
    return count_text(str(block.get("text") or block.get("thinking") or ""), model)


def _prompt(body: dict[str, Any]) -> tuple[int, list[Mark]]:
    """All prompt tokens of ``body``, and its cache breakpoints in order."""
    model = str(body.get("model", ""))
    digest = hashlib.sha256(model.encode())
    total, marks = 0, []

    def add(tokens: int, block: Any) -> None:
        nonlocal total
        total += tokens
        marked = isinstance(block, dict) and block.get("cache_control") is not None
        if isinstance(block, dict):
            block = {k: v for k, v in block.items() if k != "cache_control"}
        digest.update(orjson.dumps(block, option=orjson.OPT_SORT_KEYS) + b"\n")
        if marked:
            marks.append((total, digest.copy().hexdigest()))

    system = body.get("system") or []
    for block in [*(body.get("tools") or []), *([system] if isinstance(system, str) else system)]:
        add(_tokens(block, model), block)
    for message in body.get("messages") or []:
        role = str(message.get("role"))
        add(_PER_MESSAGE + count_text(role, model), role)
        content = message.get("content")
        for block in [content] if isinstance(content, str) else content or []:
            add(_tokens(block, model), block)
    return total + _REPLY_PRIMING, marks


def _thinking(body: dict[str, Any], request: ChatRequest) -> tuple[str, str] | None:
    """The thinking text and its signature when the request turned thinking on (checking the
    budget as Anthropic does)."""
    config = body.get("thinking")
    if not isinstance(config, dict) or config.get("type") not in ("enabled", "adaptive"):
        return None
    budget = config.get("budget_tokens")
    if config["type"] == "enabled":
        if not isinstance(budget, int) or budget < 1024:
            raise InvalidRequest("thinking.enabled.budget_tokens: Input should be >= 1024")
        if budget >= (request.max_tokens or 0):
            raise InvalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`.")
    question = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
    text = f"The user asks: {question[:60]}. A short, direct answer will do."
    return text, base64.b64encode(hashlib.sha256(text.encode()).digest() * 3).decode()


def _check_version(version: str, body: dict[str, Any]) -> None:
    """API version 2026-10-21 removed the sampling parameters, even at their defaults."""
    for name in _SAMPLING if version >= "2026-10-21" else ():
        if name in body:
            raise InvalidRequest(f"{name}: Extra inputs are not permitted")


def _wants_json(body: dict[str, Any]) -> bool:
    """The model follows a system prompt asking for a JSON object, or structured outputs."""
    system = body.get("system") or ""
    text = system if isinstance(system, str) else " ".join(str(b.get("text")) for b in system)
    config = body.get("output_config")
    structured = isinstance(config, dict) and config.get("format") is not None
    return "JSON object" in text or structured or body.get("output_format") is not None


def _searches(body: dict[str, Any]) -> bool:
    """The request offers the web search server tool (``web_search_20250305`` and later)."""
    tools = body.get("tools") or []
    return any(str(t.get("type", "")).startswith("web_search_") for t in tools)


def _web_search(query: str) -> list[Block]:
    """What the web search server tool adds before the answer, as Anthropic documents it: the
    ``server_tool_use`` block (its input streamed as JSON), then the ``web_search_tool_result``
    block (whole in its start event)."""
    call_id = f"srvtoolu_{secrets.token_hex(12)}"
    use = {"type": "server_tool_use", "id": call_id, "name": "web_search",
           "input": {"query": query}}  # fmt: skip
    arguments = orjson.dumps({"query": query}).decode()
    result = {"type": "web_search_result", "url": "https://example.com/answer",
              "title": "An answer", "encrypted_content": secrets.token_hex(16),
              "page_age": "April 30, 2026"}  # fmt: skip
    found = {"type": "web_search_tool_result", "tool_use_id": call_id, "content": [result]}
    return [(use, [{"type": "input_json_delta", "partial_json": arguments}]), (found, [])]


def _citation(text: str) -> dict[str, Any]:
    return {"type": "web_search_result_location", "url": "https://example.com/answer",
            "title": "An answer", "encrypted_index": secrets.token_hex(8),
            "cited_text": text[:40]}  # fmt: skip


def _blocks(reply: Reply, thinking: tuple[str, str] | None, search: str | None) -> list[Block]:
    """Each content block, whole, with the deltas that stream it (after an empty start);
    ``search``: the query of a web search made first, whose result the text cites."""
    out: list[Block] = []
    if search is not None:
        out += _web_search(search)
    if thinking is not None:
        text, signature = thinking
        pieces = [text[i : i + 24] for i in range(0, len(text), 24)]
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
        deltas.append({"type": "signature_delta", "signature": signature})
        out.append(({"type": "thinking", "thinking": text, "signature": signature}, deltas))
    if reply.text and search is not None:
        cited = _citation(reply.text)
        cited_deltas: list[dict[str, Any]] = [{"type": "citations_delta", "citation": cited}]
        cited_deltas += [{"type": "text_delta", "text": p} for p in reply.pieces]
        out.append(({"type": "text", "text": reply.text, "citations": [cited]}, cited_deltas))
    elif reply.text:
        deltas = [{"type": "text_delta", "text": p} for p in reply.pieces]
        out.append(({"type": "text", "text": reply.text}, deltas))
    for call in reply.tool_calls:
        block = {"type": "tool_use", "id": "toolu_" + call.id.removeprefix("call_"),
                 "name": call.name, "input": orjson.loads(call.arguments)}  # fmt: skip
        pieces = ["", *call.argument_pieces]
        out.append((block, [{"type": "input_json_delta", "partial_json": p} for p in pieces]))
    return out


_EMPTY: dict[str, dict[str, Any]] = {
    "thinking": {"thinking": "", "signature": ""},
    "text": {"text": ""},
    "tool_use": {"input": {}},
    "server_tool_use": {"input": {}},
    "web_search_tool_result": {},
}


def _events(message: dict[str, Any], blocks: list[Block]) -> list[Event]:
    """Anthropic's stream for ``message``: start, each block (start, deltas, stop), the stop
    reason with the output tokens, stop; a ``ping`` after the first block starts."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, (block, deltas) in enumerate(blocks):
        empty = {**block, **_EMPTY[block["type"]]}
        if "citations" in block:
            empty["citations"] = []
        start_block = {"type": "content_block_start", "index": index, "content_block": empty}
        events.append(("content_block_start", start_block))
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                    "delta": d}) for d in deltas]  # fmt: skip
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta,
                   "usage": {"output_tokens": usage["output_tokens"]}}))  # fmt: skip
    return [*events, ("message_stop", {"type": "message_stop"})]


class AnthropicSim(SimServer[Fault | ErrorEvent]):
    """A fake Anthropic API on a local port; tests script failures with :meth:`fail_next`.

    Takes the same :class:`~meterline.sim.openai.SimSettings` as the OpenAI simulator (models,
    ``api_key`` checked against ``x-api-key``, ``ttft``, ``per_token``, ``error_rate``…) and
    the same :class:`~meterline.sim.openai.Fault` scripts, plus :class:`ErrorEvent`.
    ``base_url`` has no ``/v1``, like ``ANTHROPIC_BASE_URL``.
    """

    def __init__(self, settings: SimSettings | None = None, cache_min_tokens: int = 1024) -> None:
        super().__init__(settings or SimSettings(models=ANTHROPIC_MODELS))
        self.settings.rng.seed(self.settings.seed)
        self.cache_min_tokens = cache_min_tokens
        self._cached: set[str] = set()

    def reset(self) -> None:
        """Forget scripted faults, recorded requests and the prompt cache."""
        self.faults.clear()
        self.received.clear()
        self.received_headers.clear()
        self._cached.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)

    def _gate(self, request: web.Request) -> web.Response | None:
        """The key (``x-api-key``, else a bearer token, as SDK 2.x sends it) and version."""
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        sent = request.headers.get("x-api-key", bearer)
        if self.settings.api_key is not None and sent != self.settings.api_key:
            return _error(401)
        if not request.headers.get("anthropic-version"):
            return _error(400, "anthropic-version: header is required")
        return None

    async def _read(
        self, request: web.Request, record: bool
    ) -> tuple[dict[str, Any], ChatRequest] | web.Response:
        """The checked body and its :class:`ChatRequest`, or the error to answer with."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if record:
            self.received_headers.append({k.lower(): v for k, v in request.headers.items()})
            if isinstance(body, dict):
                self.received.append(body)
        problem = self._gate(request)
        if problem is not None:
            return problem
        if not isinstance(body, dict):
            return _error(400, "There was an error parsing the body of your request.")
        if body.get("model") not in self.settings.models:
            return _error(404, f"model: {body.get('model')}")
        try:
            chat = decode_request(body if record else {"max_tokens": 1, **body})
            if record:
                _thinking(body, chat)
            _check_version(request.headers["anthropic-version"], body)
        except InvalidRequest as exc:
            return _error(400, exc.message)
        return body, chat

    def _next_fault(self) -> Fault | ErrorEvent | None:
        if self.faults:
            return self.faults.popleft()
        rng = self.settings.rng
        if self.settings.error_rate and rng.random() < self.settings.error_rate:
            return Fault("http", rng.choice((429, 500, 529)), retry_after=0.2)
        return None

    async def messages(self, request: web.Request) -> web.StreamResponse:
        checked = await self._read(request, record=True)
        if isinstance(checked, web.Response):
            return checked
        body, chat = checked
        fault = self._next_fault()
        if isinstance(fault, ErrorEvent) and not body.get("stream"):
            return _error(_STATUS.get(fault.kind, 500), fault.message)
        if isinstance(fault, Fault) and fault.kind == "http":
            after = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            return _error(fault.status, fault.message, **after)
        if isinstance(fault, Fault) and fault.kind == "hang":
            return await self._hang(request)
        message, blocks = self._answer(body, chat)
        await asyncio.sleep(self._delay(self.settings.ttft))
        if body.get("stream"):
            return await self._stream(request, _events(message, blocks), fault)
        return web.json_response(message, headers=_headers(), dumps=_dumps)

    def _answer(
        self, body: dict[str, Any], chat: ChatRequest
    ) -> tuple[dict[str, Any], list[Block]]:
        if _wants_json(body):
            chat = replace(chat, response_format=ResponseFormat("json_object"))
        reply = plan_reply(chat, lambda _text, _tokens: 0)
        thinking = _thinking(body, chat)
        search = last_user_text(chat)[:60] if _searches(body) else None
        blocks = _blocks(reply, thinking, search)
        total, marks = _prompt(body)
        read, write = self._cache(marks)
        thought = count_text(thinking[0], chat.model) if thinking else 0
        usage = {"input_tokens": total - read - write, "cache_creation_input_tokens": write,
                 "cache_read_input_tokens": read, "service_tier": "standard",
                 "output_tokens": reply.completion_tokens + thought}  # fmt: skip
        if search is not None:
            usage["server_tool_use"] = {"web_search_requests": 1}
        message = {"id": f"msg_{secrets.token_hex(12)}", "type": "message", "role": "assistant",
                   "model": self.settings.served_as.get(chat.model, chat.model),
                   "content": [block for block, _ in blocks],
                   "stop_reason": _STOP.get(reply.finish_reason, "end_turn"),
                   "stop_sequence": None, "usage": usage}  # fmt: skip
        return message, blocks

    def _cache(self, marks: list[Mark]) -> tuple[int, int]:
        """``(read, written)`` tokens: the longest prefix cached before, and the rest up to the
        last breakpoint. Prefixes under ``cache_min_tokens`` are not cached."""
        marks = [(tokens, key) for tokens, key in marks if tokens >= self.cache_min_tokens]
        if not marks:
            return 0, 0
        read = max((tokens for tokens, key in marks if key in self._cached), default=0)
        self._cached.update(key for _, key in marks)
        return read, marks[-1][0] - read

    async def count_tokens(self, request: web.Request) -> web.Response:
        checked = await self._read(request, record=False)
        if isinstance(checked, web.Response):
            return checked
        total, _ = _prompt(checked[0])
        return web.json_response({"input_tokens": total}, headers=_headers(), dumps=_dumps)

    async def models(self, request: web.Request) -> web.Response:
        problem = self._gate(request)
        if problem is not None:
            return problem
        data = [{"type": "model", "id": name,
                 "display_name": _MODELS.get(name, (name, ""))[0],
                 "created_at": _MODELS.get(name, ("", "2025-01-01T00:00:00Z"))[1]}
                for name in self.settings.models]  # fmt: skip
        data.sort(key=lambda m: m["created_at"], reverse=True)  # newest first, as Anthropic
        ends = {"first_id": data[0]["id"], "last_id": data[-1]["id"]} if data else {}
        body = {"data": data, "has_more": False, "first_id": None, "last_id": None, **ends}
        return web.json_response(body, headers=_headers(), dumps=_dumps)

    async def _stream(
        self, request: web.Request, events: list[Event], fault: Fault | ErrorEvent | None
    ) -> web.StreamResponse:
        headers = {"content-type": "text/event-stream; charset=utf-8",
                   "cache-control": "no-cache", **_headers()}  # fmt: skip
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if isinstance(fault, ErrorEvent):
            error = {"type": "error", "error": {"type": fault.kind, "message": fault.message}}
            events = [*events[: fault.after], ("error", error)]
        drop = (
            len(events) // 2 if isinstance(fault, Fault) and fault.kind == "drop_mid_stream" else -1
        )
        try:
            for i, (name, payload) in enumerate(events):
                if i == drop:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(frame(name, payload))
                if name == "content_block_delta":
                    await asyncio.sleep(self._delay(self.settings.per_token))
            await response.write_eof()
        except ConnectionResetError:
            self.cancelled_streams += 1  # the client left; nothing more to send
            return response
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        self.completed_streams += 1
        return response
