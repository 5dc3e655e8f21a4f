"""The database tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = [
    "UTCDateTime",
    "alerts",
    "api_keys",
    "budgets",
    "circuit_breakers",
    "metadata",
    "requests",
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC timestamp")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


metadata = MetaData()

requests = Table(
    "requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("tenant", String(128), nullable=False, server_default="default"),
    Column("key_id", String(64)),
    Column("surface", String(16), nullable=False),
    Column("provider", String(64)),
    Column("model_requested", String(256), nullable=False),
    Column("model", String(256)),
    Column("route_reason", Text),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("error", Text),
    Column("stream", Boolean, nullable=False),
    Column("finish_reason", String(32)),
    Column("input_tokens", Integer, nullable=False, server_default="0"),
    Column("output_tokens", Integer, nullable=False, server_default="0"),
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("cache_write_tokens", Integer, nullable=False, server_default="0"),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
    Column("usage_estimated", Boolean, nullable=False, server_default="0"),
    Column("cost_pusd", BigInteger, nullable=False, server_default="0"),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("metadata", JSON),
    Column("team", String(128)),
    Column("user", String(256)),
    Column("budget_remaining_pusd", BigInteger),
    Column("cache_hit", Boolean, nullable=False, server_default="0"),
    Column("cache_match", String(16)),  # exact | semantic; NULL: not a cache hit
    Column("cache_similarity", Float),  # a semantic hit's cosine similarity
    Column("tokens_before", Integer),
    Column("tokens_after", Integer),
    Column("compression", JSON),
    Column("guard", JSON),  # the guard stage's findings: secret kinds, an injection phrase
    Column("task_type", String(32)),
    Column("complexity", Integer),
    Column("language", String(32)),
    Column("stack", String(64)),
    Column("domain", String(32)),
    Column("request_group_id", String(32)),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("experiment", String(64)),
    Column("arm", String(16)),
    Column("success", Boolean),
    Column("rating", Integer),
    Index("ix_requests_tenant_created", "tenant", "created_at"),
    Index("ix_requests_created", "created_at"),
    Index("ix_requests_key_created", "key_id", "created_at"),
    Index("ix_requests_team_created", "team", "created_at"),
    Index("ix_requests_group", "request_group_id"),
    Index("ix_requests_route_stats", "task_type", "model", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, index=True),
    Column("tenant", String(128), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("source", String(16), nullable=False),  # chat | api | dashboard
    Column("created_at", UTCDateTime(), nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("match", String(128), nullable=False),  # a task type or a model alias
    Column("baseline", String(256), nullable=False),
    Column("challenger", String(256), nullable=False),
    Column("weight", Float, nullable=False),  # share of traffic to the challenger
    Column("auto_promote", Boolean, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),  # running | promoted | stopped
    Column("created_at", UTCDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("team", String(128)),
    Column("user", String(256)),
    Column("models", JSON),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget_pusd", BigInteger),
    Column("budget_period", String(16)),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("options", JSON),  # cache and compression overrides; NULL: none
)

budgets = Table(
    "budgets",
    metadata,
    Column("scope", String(16), primary_key=True),  # global | tenant | team | key
    Column("subject", String(128), primary_key=True),  # "*" for global
    Column("period", String(16), primary_key=True),  # daily | weekly | monthly
    Column("limit_pusd", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

circuit_breakers = Table(
    "circuit_breaker",
    metadata,
    Column("name", String(128), primary_key=True),  # "global" or "provider:<name>"
    Column("state", String(16), nullable=False),  # closed | open
    Column("window", String(32), nullable=False),
    Column("reason", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),  # budget | breaker
    Column("subject", String(256), nullable=False),
    Column("window", String(32), nullable=False),
    Column("threshold", Integer, nullable=False),  # percent
    Column("message", Text, nullable=False),
    Column("dedupe_key", String(400), nullable=False, unique=True),
    Column("delivered", Boolean, nullable=False, server_default="0"),
)
