"""``GET /v1/models`` and ``GET /v1/models/{id}``, in the format of the client that asks.

Both APIs have these two paths and answer them differently: the ``anthropic`` SDK (which sends
``anthropic-version`` with every call) gets Anthropic's model objects and page fields, every other
client OpenAI's list. Like the chat routes they need a key once keys exist, and a virtual key
limited to some models sees only those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.errors import GatewayError, ModelNotFound
from meterline.surfaces.http import header_dict, json_response
from meterline.wire.anthropic_response import encode_error as anthropic_error
from meterline.wire.openai_response import encode_error as openai_error

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["ModelsEndpoint"]

_EPOCH = "1970-01-01T00:00:00Z"  # no creation date is known for a gateway's model


def _openai_model(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


def _anthropic_model(model_id: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": _EPOCH}


class ModelsEndpoint:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self.listing, methods=["GET"]),
            Route("/models", self.listing, methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.retrieve, methods=["GET"]),
            Route("/models/{model_id:path}", self.retrieve, methods=["GET"]),
        ]

    async def _models(self, headers: dict[str, str]) -> list[tuple[str, str]]:
        auth = self.gateway.auth
        key = (await auth.caller(headers))[1] if auth is not None else None
        return await self.gateway.model_ids(key)

    async def listing(self, request: Request) -> Response:
        headers = header_dict(request)
        anthropic = "anthropic-version" in headers
        try:
            models = await self._models(headers)
        except GatewayError as exc:
            return _error(exc, anthropic)
        if not anthropic:
            data = [_openai_model(model_id, owner) for model_id, owner in models]
            return json_response({"object": "list", "data": data})
        page = [_anthropic_model(model_id) for model_id, _ in models]
        ends = {"first_id": page[0]["id"], "last_id": page[-1]["id"]} if page else {}
        return json_response(
            {"data": page, "has_more": False, "first_id": None, "last_id": None, **ends}
        )

    async def retrieve(self, request: Request) -> Response:
        headers = header_dict(request)
        anthropic = "anthropic-version" in headers
        wanted = str(request.path_params["model_id"])
        try:
            owner = next((o for m, o in await self._models(headers) if m == wanted), None)
            if owner is None:
                raise ModelNotFound(f"The model '{wanted}' does not exist", param="model")
        except GatewayError as exc:
            return _error(exc, anthropic)
        return json_response(
            _anthropic_model(wanted) if anthropic else _openai_model(wanted, owner)
        )


def _error(error: GatewayError, anthropic: bool) -> Response:
    body = anthropic_error(error) if anthropic else openai_error(error)
    return json_response(body, error.status, error.headers)
