"""A gateway with a master key and accounting on, over memory, file or Redis counters."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from meterline.settings import AccountingSettings
from meterline.sim import OpenAISim
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

MASTER = "mk-master-test-key"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def _drop_prefix(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "file", "redis"])
def counters_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Accounting settings for each counters backend (Redis for real, never skipped)."""
    if request.param != "redis":
        yield {} if request.param == "memory" else {"counters_file": str(tmp_path / "counters")}
        return
    prefix = f"mltest:{secrets.token_hex(4)}:"
    yield {"redis_url": REDIS_URL, "redis_prefix": prefix}
    asyncio.run(_drop_prefix(prefix))


class Accounted:
    """Start gateways with a master key and chosen accounting settings; stop them after."""

    def __init__(self, bg: BackgroundLoop, tmp_path: Path, sim: OpenAISim, backend: dict[str, Any]):
        self.bg, self.tmp_path, self.sim, self.backend = bg, tmp_path, sim, backend
        self.started: list[LiveGateway] = []

    def start(self, database_url: str | None = None, **accounting: Any) -> LiveGateway:
        acc = AccountingSettings(**{**self.backend, **accounting})
        settings = make_settings(database_url or f"sqlite:///{self.tmp_path / 'acct.db'}",
                                 self.sim, accounting=acc, master_key=MASTER)  # fmt: skip
        live = start_gateway(self.bg, settings)
        self.started.append(live)
        return live

    def stop_all(self) -> None:
        for live in self.started:
            live.stop()
        self.started.clear()


@pytest.fixture
def accounted(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, counters_backend: dict[str, Any]
) -> Iterator[Accounted]:
    helper = Accounted(bg, tmp_path, openai_sim, counters_backend)
    yield helper
    helper.stop_all()


class Clients:
    """SDK clients made by a test, closed when it ends (their sockets would leak otherwise)."""

    def __init__(self) -> None:
        self._made: list[openai.OpenAI | anthropic.Anthropic] = []

    def openai(self, live: LiveGateway, key: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0)
        self._made.append(client)
        return client

    def anthropic(self, live: LiveGateway, key: str) -> anthropic.Anthropic:
        client = anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0)
        self._made.append(client)
        return client

    def close(self) -> None:
        for client in self._made:
            client.close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


def admin(live: LiveGateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {MASTER}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{live.url}{path}", headers=headers, timeout=30, **kwargs)


def create_key(live: LiveGateway, **fields: Any) -> dict[str, Any]:
    resp = admin(live, "POST", "/api/keys", json={"name": "t", "tenant": "acme", **fields})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def settle(live: LiveGateway) -> None:
    """Wait for settlements and log rows of finished requests."""
    live.call(lambda g: g.ledger.drain())
    live.flush()


__all__ = ["MASTER", "Accounted", "Clients", "admin", "create_key", "dataclasses", "settle"]
