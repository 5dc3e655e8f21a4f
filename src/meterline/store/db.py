"""Opening the database: URL normalisation, the async engine, migrations at start-up.

``sqlite:///path`` (the embedded default, in WAL mode) and ``postgresql://…`` (asyncpg) are
both accepted in their plain forms; the async driver is chosen here.
"""

from __future__ import annotations

import importlib.resources
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["async_url", "open_engine", "sqlite_pragmas"]

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg"}  # fmt: skip


def async_url(url: str) -> str:
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None and parsed.drivername not in _DRIVERS.values():
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """WAL, normal sync and a busy timeout, on every SQLite connection Meterline opens."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _cheap_sqlite_binding() -> None:
    """Bind ``None`` and ``bool`` without the sqlite3 module's adapter search.

    The module binds exact ``int``, ``float``, ``str`` and ``bytes`` directly; anything else
    (``None``, ``bool``) first goes through an adapter lookup that fails by raising and catching
    two ``AttributeError``s — about half the cost of inserting a log row, most of whose columns
    are often NULL (and the padding rows of a multi-row insert are all NULL). With an adapter
    registered, the lookup is one dict hit. What gets stored is unchanged: NULL and 0/1.
    """
    answers_none = cast("Callable[[None], None]", {}.get)  # a C callable: no Python frame
    sqlite3.register_adapter(type(None), answers_none)
    sqlite3.register_adapter(bool, int)


_MIGRATION_LOCK = 0x6D6C  # any constant; shared by every replica of one database


def _migrate(connection: Connection) -> None:
    # Processes starting together (replicas, ``serve --workers N``) must not run the same
    # migration twice: the first takes a lock for its transaction, the others wait for it and
    # then find the schema up to date.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first DDL
    config = Config()
    location = importlib.resources.files("meterline.store").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def open_engine(url: str) -> AsyncEngine:
    """Create the engine and bring the schema up to date."""
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(full, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    if parsed.get_backend_name() == "sqlite":
        _cheap_sqlite_binding()
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    async with engine.begin() as conn:
        await conn.run_sync(_migrate)
    return engine
