"""The request log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False, server_default="default"),
        sa.Column("key_id", sa.String(64)),
        sa.Column("surface", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(64)),
        sa.Column("model_requested", sa.String(256), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("route_reason", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cached_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("usage_estimated", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("cost_pusd", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("metadata", sa.JSON),
    )
    op.create_index("ix_requests_tenant_created", "requests", ["tenant", "created_at"])
    op.create_index("ix_requests_created", "requests", ["created_at"])


def downgrade() -> None:
    op.drop_table("requests")
