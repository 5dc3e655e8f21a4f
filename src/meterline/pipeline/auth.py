"""Auth stage: the caller's key → :class:`Principal`.

Open (anonymous, tenant ``default``) only while no master key and no virtual key exist. The key
comes as ``Authorization: Bearer …`` or ``x-api-key: …`` on either surface. The master key is
accepted on ``/v1`` too, as tenant ``default``, and is subject to the global budgets and breakers
like everyone else.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping

from meterline.auth import ApiKey, KeyRing
from meterline.errors import AuthError, PermissionDenied
from meterline.pipeline.context import RequestContext
from meterline.types import Principal

__all__ = ["AuthStage", "presented_key"]

MASTER_PRINCIPAL = Principal(tenant="default", key_id="master")


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return headers.get("x-api-key") or None


class AuthStage:
    def __init__(self, ring: KeyRing, master_key: str | None) -> None:
        self.ring = ring
        self.master_key = master_key

    @property
    def required(self) -> bool:
        return self.master_key is not None or self.ring.any_keys

    async def caller(self, headers: Mapping[str, str]) -> tuple[Principal, ApiKey | None]:
        """Who presents the key in ``headers`` (anonymous while no key is required), and their
        virtual key (``None`` for the master key); :class:`AuthError` if none is valid."""
        if not self.required:
            return Principal(), None
        token = presented_key(headers)
        if token is None:
            raise AuthError("missing API key: send it as 'Authorization: Bearer <key>'")
        if self.master_key is not None and hmac.compare_digest(token, self.master_key):
            return MASTER_PRINCIPAL, None
        key = await self.ring.lookup(token)
        if key is None:
            raise AuthError("invalid API key")
        problem = key.problem(dt.datetime.now(dt.UTC))
        if problem is not None:
            raise AuthError(problem)
        return key.principal, key

    async def __call__(self, ctx: RequestContext) -> None:
        if not self.required:
            return None
        principal, key = await self.caller(ctx.headers)
        ctx.principal = principal
        if key is None:
            return None
        if not key.allows(ctx.request.model):
            raise PermissionDenied(
                f"this API key may not use the model '{ctx.request.model}'",
                param="model",
                code="model_not_allowed",
            )
        ctx.key = key
        return None
