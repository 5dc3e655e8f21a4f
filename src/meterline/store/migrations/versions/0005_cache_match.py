"""Which cache answered a request (exact or semantic) and, for the semantic cache, how similar
the matched question was.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("cache_match", sa.String(16)))
        batch.add_column(sa.Column("cache_similarity", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("cache_similarity")
        batch.drop_column("cache_match")
