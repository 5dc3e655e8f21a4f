"""``/api/keys``: create (plaintext shown once), list, revoke. Master key only.

A key may also override the response cache TTL and prompt compression
(:mod:`meterline.admin.key_options`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.accounting.ledger import usd_to_pusd
from meterline.admin.access import Access
from meterline.admin.http import answers_errors, json_body
from meterline.admin.key_options import options_json, parse_key_options
from meterline.auth import ApiKey, KeySpec
from meterline.catalog import to_usd
from meterline.errors import InvalidRequest, ModelNotFound
from meterline.surfaces.http import json_response

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["KeysAPI", "key_json", "parse_key_spec"]

_PERIODS = ("daily", "weekly", "monthly")


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{name}' must be a non-empty string", param=name)
    return value


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidRequest(f"'{name}' must be a positive integer", param=name)
    return value


def _budget(raw: Any) -> tuple[int | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict) or raw.get("period") not in _PERIODS:
        message = "'budget' must be {'usd': '5.00', 'period': 'daily|weekly|monthly'}"
        raise InvalidRequest(message, param="budget")
    try:
        amount = usd_to_pusd(str(raw.get("usd")))
    except (ValueError, ArithmeticError):
        raise InvalidRequest("'budget.usd' must be a decimal amount", param="budget.usd") from None
    return amount, str(raw["period"])


def _expiry(raw: Any) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(raw))
    except ValueError:
        raise InvalidRequest("'expires_at' must be an ISO 8601 time", param="expires_at") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_key_spec(body: dict[str, Any]) -> KeySpec:
    models = body.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) for m in models)
    ):
        raise InvalidRequest("'models' must be a list of model names", param="models")
    budget, period = _budget(body.get("budget"))
    return KeySpec(
        name=_text(body, "name", required=True) or "",
        tenant=_text(body, "tenant", required=True) or "",
        team=_text(body, "team"),
        user=_text(body, "user"),
        models=tuple(models) if models is not None else None,
        rpm=_count(body, "rpm"),
        tpm=_count(body, "tpm"),
        budget_pusd=budget,
        budget_period=period,
        expires_at=_expiry(body.get("expires_at")),
        options=parse_key_options(body),
    )


def key_json(key: ApiKey) -> dict[str, Any]:
    spec = key.spec
    budget = None
    if spec.budget_pusd is not None:
        budget = {"usd": str(to_usd(spec.budget_pusd)), "period": spec.budget_period}
    return {
        "id": key.id, "prefix": key.prefix, "name": spec.name, "tenant": spec.tenant,
        "team": spec.team, "user": spec.user,
        "models": list(spec.models) if spec.models is not None else None,
        "rpm": spec.rpm, "tpm": spec.tpm, "budget": budget, **options_json(spec.options),
        "expires_at": spec.expires_at.isoformat() if spec.expires_at else None,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }  # fmt: skip


class KeysAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [
            Route("/api/keys", self.create, methods=["POST"]),
            Route("/api/keys", self.list, methods=["GET"]),
            Route("/api/keys/{key_id}", self.revoke, methods=["DELETE"]),
        ]

    @answers_errors
    async def create(self, request: Request) -> Response:
        await self.access.admin(request)
        key, plaintext = await self.gateway.keys.create(parse_key_spec(await json_body(request)))
        return json_response({**key_json(key), "key": plaintext}, 201)

    @answers_errors
    async def list(self, request: Request) -> Response:
        await self.access.admin(request)
        keys = await self.gateway.keys.list()
        return json_response({"data": [key_json(k) for k in keys]})

    @answers_errors
    async def revoke(self, request: Request) -> Response:
        await self.access.admin(request)
        key_id = request.path_params["key_id"]
        if not await self.gateway.keys.revoke(key_id):
            raise ModelNotFound(f"no active key with id '{key_id}'", code="key_not_found")
        return json_response({"id": key_id, "revoked": True})
