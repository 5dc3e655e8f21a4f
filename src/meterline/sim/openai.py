"""A simulated OpenAI Chat Completions server, speaking OpenAI's wire format.

Used by ``meterline demo``, the benchmarks and the tests (``tests/fakes`` wires it up). It answers
like the real API does: the same JSON shapes, SSE framing with ``data: [DONE]``, usage blocks with
``prompt_tokens_details.cached_tokens`` and ``completion_tokens_details.reasoning_tokens`` (token
counts are real, from the offline tokenizer), OpenAI's error bodies and rate-limit headers.

Behaviour is deterministic unless ``error_rate`` or latency jitter is set. Tests script failures
with :meth:`OpenAISim.fail_next`.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from meterline.sim.replies import Reply, plan_reply
from meterline.sim.server import SimServer
from meterline.sim.settings import Fault, SimSettings
from meterline.wire.openai_request import decode_request

__all__ = ["Fault", "OpenAISim", "SimSettings"]


def _error(status: int, message: str, kind: str, code: str | None, **headers: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


_HTTP_FAULTS: dict[int, tuple[str, str, str | None]] = {
    429: (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
        "Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    400: ("Invalid request.", "invalid_request_error", None),
}


def _choices(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 1 else 1


def _logprobs(body: dict[str, Any], pieces: list[str]) -> dict[str, Any] | None:
    """The ``logprobs`` of a choice (or of a chunk) carrying ``pieces``, for a request with
    ``logprobs: true`` (``top_logprobs`` alternatives each); made-up but well-formed values."""
    if not body.get("logprobs"):
        return None
    top = int(body.get("top_logprobs") or 0)

    def entry(token: str, rank: int) -> dict[str, Any]:
        value = -round(0.05 * (len(token) % 7 + 1) + rank, 4)
        return {"token": token, "logprob": value, "bytes": list(token.encode())}

    content = [{**entry(p, 0), "top_logprobs": [entry(p, r) for r in range(top)]}
               for p in pieces]  # fmt: skip
    return {"content": content, "refusal": None}


class OpenAISim(SimServer[Fault]):
    base_path = "/v1"

    def __init__(self, settings: SimSettings | None = None) -> None:
        super().__init__(settings or SimSettings())
        self.settings.rng.seed(self.settings.seed)
        self.scripted: deque[str] = deque()
        self._prefixes: set[str] = set()

    def say_next(self, *texts: str) -> None:
        """The next answers' text, in order (tool calls and the usual reply are skipped)."""
        self.scripted.extend(texts)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)

    def _headers(self, started: float) -> dict[str, str]:
        return {
            "openai-version": "2020-10-01",
            "openai-processing-ms": str(int((time.perf_counter() - started) * 1000)),
            "x-request-id": f"req_{secrets.token_hex(16)}",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "10000000",
            "x-ratelimit-remaining-tokens": "9999000",
            "x-ratelimit-reset-tokens": "0s",
        }

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"}
                for m in self.settings.models]  # fmt: skip
        return web.json_response({"object": "list", "data": data}, dumps=_dumps)

    def _check(self, request: web.Request, body: Any) -> web.Response | None:
        key = self.settings.api_key
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")  # fmt: skip
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "Missing required parameter: 'messages'.",
                          "invalid_request_error", "missing_required_parameter")  # fmt: skip
        if body.get("model") not in self.settings.models:
            message = (
                f"The model `{body.get('model')}` does not exist or you do not have access to it."
            )
            return _error(404, message, "invalid_request_error", "model_not_found")
        return None

    def _random_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.popleft()
        rng = self.settings.rng
        if self.settings.error_rate and rng.random() < self.settings.error_rate:
            return Fault("http", rng.choice((429, 500, 503)), retry_after=0.2)
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.",
                          "invalid_request_error", None)  # fmt: skip
        self.received.append(body)
        self.received_headers.append(dict(request.headers))
        problem = self._check(request, body)
        if problem is not None:
            return problem
        fault = self._random_fault()
        if fault is not None and fault.kind == "http":
            message, kind, code = _HTTP_FAULTS.get(fault.status, _HTTP_FAULTS[500])
            headers = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            return _error(fault.status, fault.message or message, kind, code, **headers)
        if fault is not None and fault.kind == "hang":
            return await self._hang(request)
        text = self.scripted.popleft() if self.scripted else None
        reply = plan_reply(decode_request(body), self._cached_tokens, text)
        await asyncio.sleep(self._delay(self.settings.ttft))
        if body.get("stream"):
            return await self._stream(request, body, reply, fault, started)
        return web.json_response(self._completion(body, reply), headers=self._headers(started),
                                 dumps=_dumps)  # fmt: skip

    def _cached_tokens(self, prompt_text: str, prompt_tokens: int) -> int:
        """OpenAI caches prompts of 1024+ tokens in 128-token steps once a prefix was seen."""
        if prompt_tokens < 1024:
            return 0
        key = hashlib.sha256(prompt_text[:4000].encode()).hexdigest()
        seen = key in self._prefixes
        self._prefixes.add(key)
        return (prompt_tokens // 128) * 128 - 128 if seen else 0

    def _usage(self, reply: Reply, choices: int = 1) -> dict[str, Any]:
        completion = reply.completion_tokens * choices  # n choices, each the same length
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": reply.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _model(self, body: dict[str, Any]) -> str:
        return self.settings.served_as.get(str(body["model"]), str(body["model"]))

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None,
                                   "annotations": []}  # fmt: skip
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in reply.tool_calls
            ]  # fmt: skip
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(body),
            "choices": [
                {
                    "index": index,
                    "message": message,
                    "logprobs": _logprobs(body, reply.pieces if reply.text else []),
                    "finish_reason": reply.finish_reason,
                }
                for index in range(_choices(body))
            ],  # fmt: skip
            "usage": self._usage(reply, _choices(body)),
            "service_tier": "default",
            "system_fingerprint": "fp_sim",
        }

    def _chunks(self, body: dict[str, Any], reply: Reply, with_usage: bool) -> list[dict[str, Any]]:
        head = {"id": f"chatcmpl-{secrets.token_hex(12)}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self._model(body),
                "service_tier": "default", "system_fingerprint": "fp_sim"}  # fmt: skip

        def chunk(delta: dict[str, Any], finish: str | None = None,
                  logprobs: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
            out = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs,
                                        "finish_reason": finish}]}  # fmt: skip
            if with_usage:
                out["usage"] = None
            return out

        def as_choice(out: dict[str, Any], index: int) -> dict[str, Any]:
            return {**out, "choices": [{**c, "index": index} for c in out["choices"]]}

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        chunks += [chunk({"content": piece}, None, _logprobs(body, [piece]))
                   for piece in reply.pieces]  # fmt: skip
        for index, call in enumerate(reply.tool_calls):
            chunks.append(chunk({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                 "function": {"name": call.name, "arguments": ""}}]}))  # fmt: skip
            for piece in call.argument_pieces:
                chunks.append(chunk({"tool_calls": [{"index": index,
                                     "function": {"arguments": piece}}]}))  # fmt: skip
        chunks.append(chunk({}, reply.finish_reason))
        # With n > 1 every choice streams the same answer, the choices' chunks interleaved.
        chunks = [as_choice(c, i) for c in chunks for i in range(_choices(body))]
        if with_usage:
            chunks.append({**head, "choices": [], "usage": self._usage(reply, _choices(body))})
        return chunks

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        reply: Reply,
        fault: Fault | None,
        started: float,
    ) -> web.StreamResponse:
        headers = {"content-type": "text/event-stream; charset=utf-8", **self._headers(started)}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        with_usage = (
            wants_usage
            and self.settings.stream_usage
            and not (fault is not None and fault.kind == "no_usage")
        )
        chunks = self._chunks(body, reply, with_usage)
        try:
            for i, data in enumerate(chunks):
                if fault is not None and fault.kind == "drop_mid_stream" and i == len(chunks) // 2:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(b"data: " + orjson.dumps(data) + b"\n\n")
                await asyncio.sleep(self._delay(self.settings.per_token))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            self.cancelled_streams += 1  # the client left; nothing more to send
            return response
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        self.completed_streams += 1
        return response
