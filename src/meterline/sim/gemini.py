"""A simulated Google Gemini API server (``generativelanguage.googleapis.com``'s wire format).

It answers ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``
(SSE frames ``data: {…}`` ended by ``\\r\\n\\r\\n`` as Google sends them, and no ``[DONE]``) and
``GET /v1beta/models``. Replies come from :func:`~meterline.sim.replies.plan_reply`, so text and
token counts match the other simulated providers. ``usageMetadata`` reports implicit-cache hits
(``cachedContentTokenCount``) and, for thinking models, ``thoughtsTokenCount``. Errors have
Google's shape, ``{"error": {"code", "message", "status", "details"}}``; a wrong API key is a
400 ``API_KEY_INVALID``, a missing one a 403, as the real API answers.

Failures are scripted with :meth:`GeminiSim.fail_next`, as for :class:`~meterline.sim.OpenAISim`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
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
    ToolChoice,
    ToolResultPart,
)

__all__ = ["GEMINI_MODELS", "GeminiSim", "chat_request"]

GEMINI_MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")
_GOOGLE_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED",
          "You exceeded your current quota, please check your plan and billing details."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
          "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}  # fmt: skip
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS"}
_PIECES_PER_EVENT = 4  # Gemini streams a few words per event, not one token each
_RPC = "type.googleapis.com/google.rpc."
_METHODS = ("generateContent", "streamGenerateContent")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", charset="UTF-8"
    )


def _error(
    status: int, message: str | None = None, details: list[Any] | None = None
) -> web.Response:
    """A Google error answer: ``{"error": {"code", "message", "status"[, "details"]}}``."""
    grpc, default = _GOOGLE_ERRORS.get(status, _GOOGLE_ERRORS[500])
    error: dict[str, Any] = {"code": status, "message": message or default, "status": grpc}
    if details:
        error["details"] = details
    return _json({"error": error}, status)


def _fault_error(fault: Fault) -> web.Response:
    details: list[Any] = []
    if fault.status == 429:
        details.append({"@type": f"{_RPC}QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]})  # fmt: skip
        if fault.retry_after is not None:
            details.append({"@type": f"{_RPC}RetryInfo", "retryDelay": f"{fault.retry_after:g}s"})
    return _error(fault.status, fault.message, details)


def _bad_key() -> web.Response:
    message = "API key not valid. Please pass a valid API key."
    return _error(400, message, [
        {"@type": f"{_RPC}ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": f"{_RPC}LocalizedMessage", "locale": "en-US", "message": message},
    ])  # fmt: skip


# The incoming generateContent body, read back into the internal request plan_reply works on.


def _part(raw: dict[str, Any]) -> ContentPart | None:
    if isinstance(raw.get("text"), str):
        return TextPart(raw["text"])
    if isinstance(raw.get("inlineData"), dict):
        return ImagePart(data=raw["inlineData"].get("data"),
                         media_type=raw["inlineData"].get("mimeType"))  # fmt: skip
    if isinstance(raw.get("functionCall"), dict):
        call = raw["functionCall"]
        return ToolCallPart(
            call.get("name", ""), call.get("name", ""), json.dumps(call.get("args"))
        )
    return None


def _turn(content: dict[str, Any]) -> list[Message]:
    """One ``contents`` entry; each ``functionResponse`` becomes a tool message of its own."""
    role: Role = "assistant" if content.get("role") == "model" else "user"
    parts: list[ContentPart] = []
    results: list[Message] = []
    for raw in content.get("parts") or ():
        response = raw.get("functionResponse")
        if isinstance(response, dict):
            output = TextPart(json.dumps(response.get("response")))
            results.append(Message("tool", (ToolResultPart(response.get("name", ""), (output,)),)))
        elif (part := _part(raw)) is not None:
            parts.append(part)
    return ([Message(role, tuple(parts))] if parts else []) + results


def _tool_choice(body: dict[str, Any]) -> ToolChoice | None:
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode, names = config.get("mode"), config.get("allowedFunctionNames") or []
    if mode == "NONE":
        return ToolChoice("none")
    if mode == "ANY":
        return ToolChoice("tool", names[0]) if len(names) == 1 else ToolChoice("required")
    return None


def chat_request(model: str, body: dict[str, Any]) -> ChatRequest:
    """The :class:`ChatRequest` a ``generateContent`` body asks for (what the sim answers)."""
    system = "".join(
        p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", ())
    )
    messages = [Message("system", (TextPart(system),))] if system else []
    for content in body.get("contents") or ():
        messages.extend(_turn(content))
    declarations = [d for t in body.get("tools") or () for d in t.get("functionDeclarations", ())]
    tools = [Tool(d["name"], d.get("description"), d.get("parameters") or {}) for d in declarations]
    config = body.get("generationConfig") or {}
    json_mode = config.get("responseMimeType") == "application/json"
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        tools=tuple(tools),
        tool_choice=_tool_choice(body),
        max_tokens=config.get("maxOutputTokens"),
        response_format=ResponseFormat("json_object") if json_mode else None,
    )


# The answer.


def _thinks(model: str, body: dict[str, Any]) -> bool:
    """2.5 Pro always thinks; 2.5 Flash unless its budget is 0; Flash-Lite only when asked."""
    budget = ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get(
        "thinkingBudget"
    )
    if "pro" in model:
        return True
    if "lite" in model:
        return isinstance(budget, int) and budget != 0
    return "2.5" in model and budget != 0


def _usage(reply: Reply, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": reply.completion_tokens,
        "totalTokenCount": reply.prompt_tokens + reply.completion_tokens + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}],
    }
    if reply.cached_tokens:
        usage["cachedContentTokenCount"] = reply.cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.cached_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _events(model: str, reply: Reply, thoughts: int, per_event: int) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` objects of an answer, ``per_event`` text pieces each.

    Every event repeats the usage counted so far; the last one has the finish reason, the
    function calls and the complete ``usageMetadata``.
    """
    head = {"modelVersion": model, "responseId": secrets.token_urlsafe(16)}
    steps = range(0, len(reply.pieces), per_event)
    texts = ["".join(reply.pieces[i : i + per_event]) for i in steps] or [""]
    partial = {"promptTokenCount": reply.prompt_tokens,
               "totalTokenCount": reply.prompt_tokens + thoughts}  # fmt: skip
    events: list[dict[str, Any]] = []
    for text in texts:
        parts = [{"text": text}] if text else []
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        events.append({"candidates": [candidate], "usageMetadata": partial, **head})
    last = events[-1]
    last["candidates"][0]["content"]["parts"] += [
        {"functionCall": {"name": c.name, "args": orjson.loads(c.arguments)}}
        for c in reply.tool_calls
    ]
    last["candidates"][0]["finishReason"] = _FINISH.get(reply.finish_reason, "STOP")
    last["usageMetadata"] = _usage(reply, thoughts)
    return events


class GeminiSim(SimServer[Fault]):
    """The simulated Gemini API; ``base_url`` has no ``/v1beta`` (the provider adds the path)."""

    def __init__(self, settings: SimSettings | None = None) -> None:
        super().__init__(settings or SimSettings(models=GEMINI_MODELS))
        self.settings.rng.seed(self.settings.seed)
        self.received_paths: list[str] = []
        self.usage_sent: list[dict[str, Any]] = []  # the final usageMetadata of each answer
        self._prefixes: set[str] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self.generate)
        app.router.add_get("/v1beta/models", self.models)

    def _auth(self, request: web.Request) -> web.Response | None:
        expected = self.settings.api_key
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if expected is None or given == expected:
            return None
        if given:
            return _bad_key()
        return _error(403, "Method doesn't allow unregistered callers (callers without "
                      "established identity). Please use API Key or other form of API "
                      "consumer identity to call this API.")  # fmt: skip

    def _refusal(self, request: web.Request, model: str, method: str) -> web.Response | None:
        """The error answer for a bad key or an unknown model or method, if any."""
        problem = self._auth(request)
        if problem is None and (model not in self.settings.models or method not in _METHODS):
            problem = _error(404, f"models/{model} is not found for API version v1beta, or is "
                             f"not supported for {method}. Call ListModels to see the list of "
                             "available models and their supported methods.")  # fmt: skip
        return problem

    async def models(self, request: web.Request) -> web.Response:
        problem = self._auth(request)
        if problem is not None:
            return problem
        methods = [*_METHODS, "countTokens", "createCachedContent"]
        models = [{"name": f"models/{m}", "version": "001", "displayName": m,
                   "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                   "supportedGenerationMethods": methods}
                  for m in self.settings.models]  # fmt: skip
        return _json({"models": models})

    async def _read(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "Invalid JSON payload received. Unexpected token.")
        self.received.append(body)
        self.received_headers.append(dict(request.headers))
        self.received_paths.append(request.path_qs)
        if not isinstance(body, dict) or not body.get("contents"):
            return _error(400, "* GenerateContentRequest.contents: contents is not specified\n")
        return body

    def _next_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.popleft()
        rng = self.settings.rng
        if self.settings.error_rate and rng.random() < self.settings.error_rate:
            return Fault("http", rng.choice((429, 500, 503)), retry_after=0.2)
        return None

    async def generate(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].rpartition(":")
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        problem = self._refusal(request, model, method)
        if problem is not None:
            return problem
        fault = self._next_fault()
        if fault is not None and fault.kind == "http":
            return _fault_error(fault)
        if fault is not None and fault.kind == "hang":
            return await self._hang(request)
        reply = plan_reply(chat_request(model, body), lambda t, n: self._cached(model, t, n))
        thoughts = 64 + reply.prompt_tokens % 128 if _thinks(model, body) else 0
        self.usage_sent.append(_usage(reply, thoughts))
        await asyncio.sleep(self.settings.ttft)
        if method == "generateContent":
            return _json(_events(model, reply, thoughts, len(reply.pieces) or 1)[0])
        events = _events(model, reply, thoughts, _PIECES_PER_EVENT)
        if fault is not None and fault.kind == "no_usage":
            events = [{k: v for k, v in e.items() if k != "usageMetadata"} for e in events]
        return await self._stream(request, events, fault)

    async def _stream(
        self, request: web.Request, events: list[dict[str, Any]], fault: Fault | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            for i, event in enumerate(events):
                if fault is not None and fault.kind == "drop_mid_stream" and i == len(events) // 2:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
                await asyncio.sleep(self.settings.per_token * _PIECES_PER_EVENT)
            await response.write_eof()
        except ConnectionResetError:
            self.cancelled_streams += 1  # the client left; nothing more to send
            return response
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        self.completed_streams += 1
        return response

    def _cached(self, model: str, prompt_text: str, prompt_tokens: int) -> int:
        """Implicit caching: a prefix seen before, of 1024+ tokens (4096+ on Pro), is a hit."""
        if prompt_tokens < (4096 if "pro" in model else 1024):
            return 0
        key = hashlib.sha256(f"{model}:{prompt_text[:4000]}".encode()).hexdigest()
        seen = key in self._prefixes
        self._prefixes.add(key)
        return (prompt_tokens // 256) * 256 - 256 if seen else 0
