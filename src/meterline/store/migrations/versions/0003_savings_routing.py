"""Cache, compression and routing fields on the request log; feedback and experiments.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("cache_hit", sa.Boolean, nullable=False, server_default="0"))
        batch.add_column(sa.Column("tokens_before", sa.Integer))
        batch.add_column(sa.Column("tokens_after", sa.Integer))
        batch.add_column(sa.Column("compression", sa.JSON))
        batch.add_column(sa.Column("task_type", sa.String(32)))
        batch.add_column(sa.Column("complexity", sa.Integer))
        batch.add_column(sa.Column("language", sa.String(32)))
        batch.add_column(sa.Column("stack", sa.String(64)))
        batch.add_column(sa.Column("domain", sa.String(32)))
        batch.add_column(sa.Column("request_group_id", sa.String(32)))
        batch.add_column(sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("experiment", sa.String(64)))
        batch.add_column(sa.Column("arm", sa.String(16)))
        batch.add_column(sa.Column("success", sa.Boolean))
        batch.add_column(sa.Column("rating", sa.Integer))
    op.create_index("ix_requests_group", "requests", ["request_group_id"])
    op.create_index("ix_requests_route_stats", "requests", ["task_type", "model", "created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False, index=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("match", sa.String(128), nullable=False),
        sa.Column("baseline", sa.String(256), nullable=False),
        sa.Column("challenger", sa.String(256), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("auto_promote", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("experiments")
    op.drop_table("feedback")
    op.drop_index("ix_requests_route_stats", "requests")
    op.drop_index("ix_requests_group", "requests")
    with op.batch_alter_table("requests") as batch:
        for name in ("rating", "success", "arm", "experiment", "attempt", "request_group_id",
                     "domain", "stack", "language", "complexity", "task_type", "compression",
                     "tokens_after", "tokens_before", "cache_hit"):  # fmt: skip
            batch.drop_column(name)
