"""Virtual API keys: created once (plaintext shown once, only a SHA-256 stored), looked up from
an in-memory ring on the hot path, revoked or expired.

The ring is loaded at start-up and refreshed every few seconds, so keys created or revoked by
another replica (or by ``meterline keys``) are seen within ``refresh_interval``; an unknown key
is looked up in the database once and the miss remembered briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.auth.options import KeyOptions
from meterline.store.schema import api_keys
from meterline.types import Principal

__all__ = ["ApiKey", "KeyRing", "KeySpec", "hash_key"]

log = logging.getLogger("meterline.auth")

KEY_PREFIX = "mk-"


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What ``POST /api/keys`` and ``meterline keys create`` accept."""

    name: str
    tenant: str
    team: str | None = None
    user: str | None = None
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_pusd: int | None = None
    budget_period: str | None = None
    expires_at: dt.datetime | None = None
    options: KeyOptions = KeyOptions()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    prefix: str
    spec: KeySpec
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def principal(self) -> Principal:
        return Principal(self.spec.tenant, self.spec.team, self.spec.user, self.id)

    def problem(self, now: dt.datetime) -> str | None:
        """Why this key cannot be used now, or ``None``."""
        if self.revoked_at is not None:
            return "this API key has been revoked"
        if self.spec.expires_at is not None and self.spec.expires_at <= now:
            return "this API key has expired"
        return None

    def allows(self, model: str) -> bool:
        """``gpt-4o`` on the list also allows ``openai:gpt-4o``; ``openai:gpt-4o`` only that."""
        models = self.spec.models
        return models is None or model in models or model.partition(":")[2] in models


def _from_row(row: Any) -> tuple[str, ApiKey]:
    spec = KeySpec(
        name=row.name, tenant=row.tenant, team=row.team, user=row.user,
        models=tuple(row.models) if row.models is not None else None,
        rpm=row.rpm, tpm=row.tpm, budget_pusd=row.budget_pusd,
        budget_period=row.budget_period, expires_at=row.expires_at,
        options=KeyOptions.from_json(row.options),
    )  # fmt: skip
    return row.key_hash, ApiKey(row.id, row.prefix, spec, row.created_at, row.revoked_at)


class KeyRing:
    def __init__(self, engine: AsyncEngine, refresh_interval: float = 5.0) -> None:
        self.engine = engine
        self.refresh_interval = refresh_interval
        self._by_hash: dict[str, ApiKey] = {}
        self._misses: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def any_keys(self) -> bool:
        return bool(self._by_hash)

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._refresh(), name="meterline-key-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def load(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(api_keys))).all()
        self._by_hash = dict(_from_row(r) for r in rows)
        self._misses.clear()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.load()
            except Exception:  # noqa: BLE001 - keep serving from the last good ring
                log.exception("refreshing API keys failed; keeping the previous ring")

    async def lookup(self, plaintext: str) -> ApiKey | None:
        digest = hash_key(plaintext)
        key = self._by_hash.get(digest)
        if key is not None or self._misses.get(digest, 0) > time.monotonic():
            return key
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == digest))
            ).first()
        if row is None:
            self._misses[digest] = time.monotonic() + self.refresh_interval
            return None
        _, key = _from_row(row)
        self._by_hash[digest] = key
        return key

    async def create(self, spec: KeySpec) -> tuple[ApiKey, str]:
        """A new key and its plaintext (shown once; only the hash is kept)."""
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(f"key_{secrets.token_hex(8)}", plaintext[:10], spec, dt.datetime.now(dt.UTC))
        values = {
            "id": key.id, "key_hash": hash_key(plaintext), "prefix": key.prefix,
            "name": spec.name, "tenant": spec.tenant, "team": spec.team, "user": spec.user,
            "models": list(spec.models) if spec.models is not None else None,
            "rpm": spec.rpm, "tpm": spec.tpm, "budget_pusd": spec.budget_pusd,
            "budget_period": spec.budget_period, "expires_at": spec.expires_at,
            "options": spec.options.to_json(), "created_at": key.created_at,
        }  # fmt: skip
        async with self.engine.begin() as conn:
            await conn.execute(api_keys.insert().values(**values))
        self._by_hash[hash_key(plaintext)] = key
        return key, plaintext

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        async with self.engine.connect() as conn:
            return [_from_row(r)[1] for r in (await conn.execute(query)).all()]

    async def revoke(self, key_id: str) -> bool:
        now = dt.datetime.now(dt.UTC)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        await self.load()
        return bool(result.rowcount)
