"""Shared fixtures: a background loop, fake upstreams, databases (SQLite and PostgreSQL), and a
live gateway to drive with the official SDKs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterline.settings import (
    CacheSettings,
    FallbackSettings,
    LogSettings,
    ProviderSettings,
    RetrySettings,
    Settings,
)
from meterline.sim import OpenAISim, SimSettings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
UPSTREAM_KEY = "sk-upstream-test"


@pytest.fixture(scope="session")
def bg() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def openai_sim(bg: BackgroundLoop) -> Iterator[OpenAISim]:
    sim = OpenAISim(SimSettings(api_key=UPSTREAM_KEY))
    bg.run(sim.start())
    yield sim
    bg.run(sim.stop())


@pytest.fixture(scope="session")
def compat_sim(bg: BackgroundLoop) -> Iterator[OpenAISim]:
    sim = OpenAISim(SimSettings(models=("llama-3.1-8b-instant", "gpt-4o-mini"), api_key="gsk-test"))
    bg.run(sim.start())
    yield sim
    bg.run(sim.stop())


@pytest.fixture(autouse=True)
def _reset_sims(request: pytest.FixtureRequest) -> None:
    for name in ("openai_sim", "compat_sim"):
        if name in request.fixturenames:
            sim: OpenAISim = request.getfixturevalue(name)
            sim.faults.clear()
            sim.scripted.clear()
            sim.received.clear()
            sim.received_headers.clear()


async def _create_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _truncate(url: str) -> None:
    """Empty every table so each test starts from a clean database."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names}")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (the server must be running)."""
    name = f"meterline_test_{secrets.token_hex(4)}"
    asyncio.run(_create_database(name))
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_drop_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meterline.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


def make_settings(
    database_url: str,
    openai_sim: OpenAISim,
    compat_sim: OpenAISim | None = None,
    **overrides: object,
) -> Settings:
    providers = [
        ProviderSettings(
            name="openai", type="openai", base_url=openai_sim.base_url, api_key=UPSTREAM_KEY
        )
    ]
    if compat_sim is not None:
        providers.append(
            ProviderSettings(
                name="groq",
                type="openai-compatible",
                base_url=compat_sim.base_url,
                api_key="gsk-test",
            )
        )
    values: dict[str, object] = {
        "database_url": database_url,
        "providers": tuple(providers),
        "aliases": {"fast": "openai:gpt-4.1-nano", "llama": "groq:llama-3.1-8b-instant"},
        "retry": RetrySettings(max_attempts=3, backoff_initial=0.01, backoff_max=2.0),
        "log": LogSettings(flush_interval=0.05),
        # Most tests count upstream calls; the cache has its own tests that switch it on.
        "cache": CacheSettings(enabled=False),
        "fallback": FallbackSettings(enabled=False),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def live(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> Iterator[LiveGateway]:
    """A gateway on SQLite in front of the fake OpenAI and a fake OpenAI-compatible upstream."""
    settings = make_settings(f"sqlite:///{tmp_path / 'gw.db'}", openai_sim, compat_sim)
    gateway = start_gateway(bg, settings)
    yield gateway
    gateway.stop()
