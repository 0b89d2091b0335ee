"""The latest profile build a snapshot's briefs, profiles, contacts and look-up records reflect, so the
next snapshot can copy the rows of customers no build has touched since (``store.snapshot_rows``).
NULL on snapshots written before: the next one builds every row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("serving_snapshots") as batch:
        batch.add_column(sa.Column("profiles_built_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("serving_snapshots") as batch:
        batch.drop_column("profiles_built_at")
