"""Who may call ``/api/*``: the master key (everything), a virtual key (its own tenant's data,
read-only), or anyone while the gateway has neither (a fresh loopback install)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from meterline.errors import AuthError, PermissionDenied
from meterline.pipeline.auth import presented_key

if TYPE_CHECKING:
    from meterline.gateway import Gateway

__all__ = ["Access", "Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    admin: bool
    tenant: str | None  # None: every tenant


class Access:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def caller(self, request: Request) -> Caller:
        master = self.gateway.settings.master_key
        if master is None and not self.gateway.keys.any_keys:
            return Caller(admin=True, tenant=None)
        token = presented_key(request.headers)
        if token is None:
            raise AuthError("missing API key: send it as 'Authorization: Bearer <key>'")
        if master is not None and hmac.compare_digest(token, master):
            return Caller(admin=True, tenant=None)
        key = await self.gateway.keys.lookup(token)
        if key is None or key.revoked_at is not None:
            raise AuthError("invalid API key")
        return Caller(admin=False, tenant=key.spec.tenant)

    async def admin(self, request: Request) -> Caller:
        caller = await self.caller(request)
        if not caller.admin:
            hint = "" if self.gateway.settings.master_key else " (set METERLINE_MASTER_KEY)"
            raise PermissionDenied(f"this endpoint needs the master key{hint}")
        return caller
