"""What the guard stage found in a request: the kinds of credentials (redacted, refused or
flagged) and a prompt-injection phrase.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("guard", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("guard")
