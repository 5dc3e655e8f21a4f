"""Google Gemini ``generateContent`` / ``streamGenerateContent`` ⇄ the internal types. Pure.

The Gemini provider sends :func:`encode_request` to :func:`model_path` (the same body serves the
plain and the ``alt=sse`` streaming call) and reads the answer with :func:`decode_response`, or
feeds each SSE ``data:`` object of a stream to a :class:`StreamDecoder`.

Gemini differs from OpenAI where it matters for a translation:

* roles are ``user`` and ``model``; system prompts go to ``systemInstruction``; consecutive turns
  of one role are merged;
* a tool result is a ``functionResponse`` part in a ``user`` turn and carries the function *name*,
  not a call id, so the name is looked up from the assistant tool call the result answers;
* function arguments and results are JSON objects, not JSON text;
* ``usageMetadata.promptTokenCount`` already includes ``cachedContentTokenCount``, while
  ``candidatesTokenCount`` excludes ``thoughtsTokenCount``.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from meterline.errors import (
    InvalidRequest,
    ProviderError,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
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
from meterline.wire.errors import retry_after

__all__ = [
    "StreamDecoder",
    "decode_error",
    "decode_models",
    "decode_response",
    "decode_usage",
    "encode_request",
    "model_path",
]

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
_GENERATION_FIELDS = (
    ("max_tokens", "maxOutputTokens"),
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)
# JSON Schema keywords Gemini's OpenAPI-style schema rejects ("Unknown name ..." 400s).
_SCHEMA_DROP = frozenset({
    "$schema", "$id", "$comment", "additionalProperties", "strict", "unevaluatedProperties",
    "patternProperties", "examples", "dependentRequired", "dependentSchemas",
})  # fmt: skip
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})  # name → schema
_SCHEMA_NESTED = frozenset({"items", "anyOf", "oneOf", "allOf", "not", "prefixItems"})


def model_path(model: str, stream: bool) -> str:
    """The path (with query for streams) of the generate call for ``model``.

    A bare name gets the ``models/`` collection; a name that already names its collection
    (``models/…``, ``tunedModels/…``) is used as given.
    """
    name = model if "/" in model else f"models/{model}"
    if stream:
        return f"/v1beta/{name}:streamGenerateContent?alt=sse"
    return f"/v1beta/{name}:generateContent"


# Encoding: ChatRequest → the generateContent body.


def _args(arguments: str) -> dict[str, Any]:
    """Tool-call arguments as the object Gemini wants; invalid or non-object JSON gives ``{}``."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _image(part: ImagePart) -> dict[str, Any]:
    data, media_type = part.data, part.media_type
    url = part.url or ""
    if data is None and url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        media_type = media_type or header or None
    if data is not None:
        return {"inlineData": {"mimeType": media_type or "image/png", "data": data}}
    file: dict[str, Any] = {}
    guessed = media_type or mimetypes.guess_type(urlsplit(url).path)[0]
    if guessed:
        file["mimeType"] = guessed
    file["fileUri"] = url
    return {"fileData": file}


def _user_parts(parts: tuple[ContentPart, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart) and part.text:
            out.append({"text": part.text})
        elif isinstance(part, ImagePart):
            out.append(_image(part))
    return out


def _model_parts(message: Message, signature: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ToolCallPart):
            call: dict[str, Any] = {
                "functionCall": {"name": part.name, "args": _args(part.arguments)}
            }
            if signature is not None:
                call["thoughtSignature"] = signature
                signature = None  # only the first call of a step carries it
            out.append(call)
        elif not isinstance(part, ThinkingPart):  # Gemini takes no thoughts back as text
            out.extend(_user_parts((part,)))
    return out


def _function_response(result: ToolResultPart) -> dict[str, Any]:
    """The ``response`` object: a JSON-object result as is, else ``{"output": text}``.

    Gemini reads an ``output`` key as the function's output and an ``error`` key as its error.
    """
    text = result.text
    if result.is_error:
        return {"error": text}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"output": text}


def _tool_parts(message: Message, names: dict[str, str], index: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for part in message.parts:
        if not isinstance(part, ToolResultPart):
            continue
        name = names.get(part.tool_call_id) or message.name
        if not name:
            raise InvalidRequest(
                f"tool result for {part.tool_call_id!r} answers no earlier assistant tool call; "
                "Gemini needs the function name",
                param=f"messages[{index}].tool_call_id",
            )
        out.append({"functionResponse": {"name": name, "response": _function_response(part)}})
        images.extend(_image(p) for p in part.content if isinstance(p, ImagePart))
    return out + images


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _contents(
    messages: tuple[Message, ...], signature: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(systemInstruction parts, contents)`` for ``messages``."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name, latest call wins
    for index, message in enumerate(messages):
        if message.role == "system":
            if message.text:
                system.append({"text": message.text})
        elif message.role == "assistant":
            names.update((call.id, call.name) for call in message.tool_calls)
            _append(contents, "model", _model_parts(message, signature))
        elif message.role == "tool":
            _append(contents, "user", _tool_parts(message, names, index))
        else:
            _append(contents, "user", _user_parts(message.parts))
    return system, contents


def _clean_schema(schema: Any) -> Any:
    """``schema`` without the keywords Gemini rejects, at every level (property names kept)."""
    if isinstance(schema, list):
        return [_clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_DROP:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _clean_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_NESTED:
            out[key] = _clean_schema(value)
        else:
            out[key] = value
    return out


def _declaration(tool: Tool) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    parameters = _clean_schema(tool.parameters)
    # Gemini rejects an OBJECT schema without properties: a tool without arguments has none.
    if parameters and (parameters.get("type") != "object" or parameters.get("properties")):
        declaration["parameters"] = parameters
    return declaration


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        return None
    config: dict[str, Any] = {"mode": _TOOL_MODES[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return {"functionCallingConfig": config}


def _response_schema(fmt: ResponseFormat) -> dict[str, Any] | None:
    """The schema of an OpenAI-style ``json_schema`` object (``{name, schema, strict}``)."""
    schema = fmt.json_schema.get("schema") if fmt.json_schema else None
    return schema if isinstance(schema, dict) else None


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field, key in _GENERATION_FIELDS:
        value = getattr(request, field)
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        config["responseMimeType"] = "application/json"
        schema = _response_schema(fmt)
        if schema is not None:
            config["responseSchema"] = _clean_schema(schema)
    return config


def encode_request(request: ChatRequest, *, thought_signature: str | None = None) -> dict[str, Any]:
    """The ``generateContent`` / ``streamGenerateContent`` body for ``request``.

    Thinking parts of the history are dropped. Gemini 3 models refuse function-call history
    whose calls lack the ``thoughtSignature`` they were returned with; the gateway does not keep
    those, so a provider talking to such a model passes Google's documented placeholder
    (``"skip_thought_signature_validator"``) as ``thought_signature``, which is then set on the
    first ``functionCall`` part of every assistant turn.
    """
    system, contents = _contents(request.messages, thought_signature)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        tool_config = _tool_config(request)
        if tool_config is not None:
            body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


# Decoding: generateContent answers, stream chunks, usage, errors, model lists.


def _count(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name)
    return int(value) if isinstance(value, int | float) else 0


def decode_usage(raw: Any) -> Usage:
    """``usageMetadata`` as :class:`Usage`: input includes cache reads, output thoughts."""
    if not isinstance(raw, dict):
        return Usage()
    thoughts = _count(raw, "thoughtsTokenCount")
    return Usage(
        input_tokens=_count(raw, "promptTokenCount") + _count(raw, "toolUsePromptTokenCount"),
        output_tokens=_count(raw, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _call_fields(part: dict[str, Any], index: int) -> tuple[str, str, str]:
    """``(id, name, arguments JSON)`` of a ``functionCall`` part; ids default to ``call_<n>``."""
    call = part["functionCall"] if isinstance(part.get("functionCall"), dict) else {}
    args = call.get("args")
    return (
        str(call.get("id") or f"call_{index}"),
        str(call.get("name", "")),
        _compact(args if isinstance(args, dict) else {}),
    )


def _finish(reason: Any, tool_calls: bool) -> FinishReason:
    mapped = _FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if mapped == "stop" and tool_calls else mapped


def _blocked(body: dict[str, Any]) -> bool:
    feedback = body.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _candidate(body: dict[str, Any]) -> dict[str, Any] | None:
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def _raw_parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _text(raw: dict[str, Any]) -> str:
    text = raw.get("text")
    return text if isinstance(text, str) else ""


def _parts(raw_parts: list[dict[str, Any]]) -> list[ContentPart]:
    parts: list[ContentPart] = []
    calls = 0
    for raw in raw_parts:
        text = _text(raw)
        if "functionCall" in raw:
            parts.append(ToolCallPart(*_call_fields(raw, calls)))
            calls += 1
        elif raw.get("thought"):
            parts.append(ThinkingPart(text, raw.get("thoughtSignature")))
        elif text:
            parts.append(TextPart(text))
    return parts


def decode_response(body: Any) -> ChatResponse:
    """A ``generateContent`` answer as a :class:`ChatResponse` (candidate 0)."""
    if not isinstance(body, dict):
        raise UpstreamUnavailable("the upstream answered without candidates")
    candidate = _candidate(body)
    if candidate is None and not _blocked(body):
        raise UpstreamUnavailable("the upstream answered without candidates")
    parts = _parts(_raw_parts(candidate)) if candidate is not None else []
    has_calls = any(isinstance(p, ToolCallPart) for p in parts)
    finish: FinishReason = (
        _finish(candidate.get("finishReason"), has_calls)
        if candidate is not None
        else "content_filter"  # the prompt itself was blocked
    )
    return ChatResponse(
        id=str(body.get("responseId") or ""),
        model=str(body.get("modelVersion") or ""),
        message=Message("assistant", tuple(parts)),
        finish_reason=finish,
        usage=decode_usage(body.get("usageMetadata")),
    )


class StreamDecoder:
    """Turns the ``data:`` objects of an ``alt=sse`` stream into internal chunks.

    Each object is a complete ``GenerateContentResponse`` holding the next parts. Function calls
    arrive whole, so each becomes one :class:`ToolCallDelta` with id, name and all arguments.

    Usage: Gemini repeats the *cumulative* ``usageMetadata`` on many chunks. The decoder keeps the
    latest and emits exactly one ``ChatChunk(usage=…)``, right after the finish-reason chunk (from
    the chunk carrying ``finishReason``, or the latest seen before it). A stream that breaks off
    before a finish reason emits none; :meth:`final_usage` still tells what was counted so far.
    """

    def __init__(self, provider: str = "gemini") -> None:
        self.provider = provider
        self._calls = 0
        self._usage: Usage | None = None
        self._finished = False
        self._head_sent = False

    def final_usage(self) -> Usage | None:
        """The latest cumulative usage the stream reported, if any."""
        return self._usage

    def feed(self, data: Any) -> list[ChatChunk]:
        """The chunks carried by one decoded SSE ``data:`` object."""
        if not isinstance(data, dict):
            return []
        error = data.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            raise decode_error(code if isinstance(code, int) else 500, data, {}, self.provider)
        if data.get("usageMetadata"):
            self._usage = decode_usage(data["usageMetadata"])
        candidate = _candidate(data)
        out = self._deltas(_raw_parts(candidate)) if candidate is not None else []
        if candidate is not None and candidate.get("finishReason"):
            out.extend(self._finish(_finish(candidate["finishReason"], self._calls > 0)))
        elif candidate is None and _blocked(data):
            out.extend(self._finish("content_filter"))
        return self._with_head(out, data)

    def _deltas(self, raw_parts: list[dict[str, Any]]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        for raw in raw_parts:
            text = _text(raw)
            if "functionCall" in raw:
                call_id, name, arguments = _call_fields(raw, self._calls)
                delta = ToolCallDelta(self._calls, call_id, name, arguments)
                out.append(ChatChunk(tool_call=delta))
                self._calls += 1
            elif raw.get("thought"):
                signature = raw.get("thoughtSignature")
                if text or signature:
                    out.append(ChatChunk(thinking=text or None, thinking_signature=signature))
            elif text:
                out.append(ChatChunk(text=text))
        return out

    def _finish(self, reason: FinishReason) -> list[ChatChunk]:
        if self._finished:
            return []
        self._finished = True
        out = [ChatChunk(finish_reason=reason)]
        if self._usage is not None:
            out.append(ChatChunk(usage=self._usage))
        return out

    def _with_head(self, out: list[ChatChunk], data: dict[str, Any]) -> list[ChatChunk]:
        """Stamp the response id and model version on the first chunk of the stream."""
        if self._head_sent or not out:
            return out
        self._head_sent = True
        response_id, model = data.get("responseId"), data.get("modelVersion")
        out[0] = replace(
            out[0],
            id=str(response_id) if response_id else None,
            model=str(model) if model else None,
        )
        return out


def _error_object(body: Any) -> dict[str, Any]:
    if isinstance(body, list) and body:  # a JSON-array stream answers errors as [{"error": …}]
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _details(err: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    details = err.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def _retry_delay(err: dict[str, Any]) -> float | None:
    """The ``google.rpc.RetryInfo`` delay: a protobuf duration string such as ``"7s"``."""
    for detail in _details(err, "google.rpc.RetryInfo"):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None


def _bad_key(err: dict[str, Any]) -> bool:
    """Gemini answers an invalid API key with 400 INVALID_ARGUMENT and this ErrorInfo reason."""
    return any(d.get("reason") == "API_KEY_INVALID" for d in _details(err, "google.rpc.ErrorInfo"))


def _rate_limited(
    text: str, err: dict[str, Any], headers: dict[str, str], common: dict[str, Any]
) -> ProviderError:
    after = retry_after(headers)
    if after is None:
        after = _retry_delay(err)
    out = UpstreamRateLimited(text, retry_after=after, **common)
    if after is not None:
        out.headers["retry-after"] = str(max(1, round(after)))
    return out


def decode_error(status: int, body: Any, headers: dict[str, str], provider: str) -> ProviderError:
    """Map a Gemini error answer (``{"error": {code, message, status}}``) to the hierarchy."""
    err = _error_object(body)
    message = str(err.get("message") or "") or f"upstream HTTP {status}"
    grpc = str(err.get("status") or "")
    text = f"{provider}: {message}"
    common: dict[str, Any] = {"provider": provider, "upstream_status": status}
    if status == 429 or grpc == "RESOURCE_EXHAUSTED":
        return _rate_limited(text, err, headers, common)
    if status in (401, 403) or grpc in ("UNAUTHENTICATED", "PERMISSION_DENIED") or _bad_key(err):
        return UpstreamAuthFailed(
            f"{provider} rejected the gateway's credentials: {message}", **common
        )
    if status in (408, 504) or grpc == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(text, **common)
    code = grpc.lower() or None
    if 400 <= status < 500:
        bad = UpstreamBadRequest(text, code=code, **common)
        bad.status = 404 if status == 404 else 400
        return bad
    return UpstreamUnavailable(text, code=code, **common)


def decode_models(body: Any) -> list[str]:
    """Model names (without ``models/``) from ``GET /v1beta/models`` that can generateContent."""
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        return []
    names: list[str] = []
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            continue
        methods = model.get("supportedGenerationMethods") or ()
        if "generateContent" in methods:
            names.append(model["name"].removeprefix("models/"))
    return names
