"""The hotels catalogue a snapshot was scored with (``serving_snapshots.hotels``): the API validates
bookings against it and reads hotel facilities and countries from it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("serving_snapshots") as batch:
        batch.add_column(sa.Column("hotels", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("serving_snapshots") as batch:
        batch.drop_column("hotels")
