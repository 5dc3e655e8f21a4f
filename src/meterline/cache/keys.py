"""Cache keys: SHA-256 over the tenant, the routed provider and model, every parameter that can
change the answer, and all messages (system prompt included). Tenant first: two tenants never
share an entry, even for byte-identical requests."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from meterline.types import ChatRequest
from meterline.wire.openai_request import encode_request

__all__ = ["cache_key", "context_key", "last_user_text"]

# Fields that say how to deliver an answer, not what it is.
_DELIVERY = ("stream", "stream_options", "user", "metadata")


def _answer_fields(model: str, request: ChatRequest) -> dict[str, Any]:
    body = encode_request(request.with_model(model), max_tokens_field="max_tokens")
    for name in _DELIVERY:
        body.pop(name, None)
    return body


def cache_key(tenant: str, provider: str, model: str, request: ChatRequest) -> str:
    body = _answer_fields(model, request)
    canonical = orjson.dumps([tenant, provider, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def context_key(tenant: str, provider: str, model: str, request: ChatRequest) -> str:
    """Everything :func:`cache_key` covers except the last message: the system prompt, earlier
    turns, tools and every parameter. Two requests share a context key only when they differ
    in their last (user) message alone, so only those may share a semantic cache answer."""
    body = _answer_fields(model, request)
    messages = body.get("messages")
    body["messages"] = messages[:-1] if isinstance(messages, list) else messages
    canonical = orjson.dumps(["context", tenant, provider, body], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return ""
