"""Shared helpers for the admin endpoints: errors in OpenAI's format, JSON bodies, params."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from meterline.errors import GatewayError, InvalidRequest
from meterline.surfaces.http import json_response, read_json
from meterline.wire.openai_response import encode_error

__all__ = ["answers_errors", "int_param", "json_body"]

Handler = Callable[[Any, Request], Awaitable[Response]]


def answers_errors(handler: Handler) -> Handler:
    """Turn a :class:`GatewayError` raised by an admin handler into its JSON answer."""

    @wraps(handler)
    async def wrapped(self: Any, request: Request) -> Response:
        try:
            return await handler(self, request)
        except GatewayError as exc:
            return json_response(encode_error(exc), exc.status, exc.headers)

    return wrapped


async def json_body(request: Request) -> dict[str, Any]:
    body = await read_json(request, 1024 * 1024)
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", param="body")
    return body


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an integer", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be between {low} and {high}", param=name)
    return value
