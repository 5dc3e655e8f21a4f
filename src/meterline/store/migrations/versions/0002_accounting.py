"""Keys, budgets, circuit breakers, alerts; tenancy columns on the request log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("team", sa.String(128)))
        batch.add_column(sa.Column("user", sa.String(256)))
        batch.add_column(sa.Column("budget_remaining_pusd", sa.BigInteger))
    op.create_index("ix_requests_key_created", "requests", ["key_id", "created_at"])
    op.create_index("ix_requests_team_created", "requests", ["team", "created_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("team", sa.String(128)),
        sa.Column("user", sa.String(256)),
        sa.Column("models", sa.JSON),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("budget_pusd", sa.BigInteger),
        sa.Column("budget_period", sa.String(16)),
        sa.Column("expires_at", _TS),
        sa.Column("revoked_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("limit_pusd", sa.BigInteger, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "circuit_breaker",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.String(400), nullable=False, unique=True),
        sa.Column("delivered", sa.Boolean, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table in ("alerts", "circuit_breaker", "budgets", "api_keys"):
        op.drop_table(table)
    op.drop_index("ix_requests_team_created", "requests")
    op.drop_index("ix_requests_key_created", "requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("budget_remaining_pusd")
        batch.drop_column("user")
        batch.drop_column("team")
