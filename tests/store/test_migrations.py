"""Processes that start together on a new database (``serve --workers N``, replicas) migrate
it once between them: the others wait and find the schema up to date."""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
from pathlib import Path

import pytest
from sqlalchemy import text

from meterline.store import open_engine
from tests.conftest import _create_database, _drop_database
from tests.store.migrate_worker import migrate


def _migrate_together(url: str, n: int) -> list[str]:
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(n), spawn.Queue()
    procs = [spawn.Process(target=migrate, args=(url, start, out)) for _ in range(n)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
    return results


async def _versions(url: str) -> list[str]:
    engine = await open_engine(url)
    try:
        async with engine.connect() as conn:
            return [
                row[0]
                for row in await conn.execute(text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("round_", range(3))
def test_four_processes_migrate_a_new_sqlite_database_once(tmp_path: Path, round_: int) -> None:
    url = f"sqlite:///{tmp_path / f'new-{round_}.db'}"
    assert _migrate_together(url, 4) == ["ok"] * 4
    assert len(asyncio.run(_versions(url))) == 1


@pytest.mark.postgres
def test_four_processes_migrate_a_new_postgres_database_once() -> None:
    name = f"meterline_migrate_{secrets.token_hex(4)}"
    asyncio.run(_create_database(name))
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        assert _migrate_together(url, 4) == ["ok"] * 4
        assert len(asyncio.run(_versions(url))) == 1
    finally:
        asyncio.run(_drop_database(name))
