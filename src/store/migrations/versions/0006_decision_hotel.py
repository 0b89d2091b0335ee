"""What a feedback check needs of a logged decision: the booking's hotel (a key bound to other hotels
cannot post feedback on it) and how the guest was recognised (a guest found by e-mail, phone or name was
not named to the caller, so feedback may not name them either). NULL on decisions logged before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("serving_decisions") as batch:
        batch.add_column(sa.Column("hotel_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("matched_by", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("serving_decisions") as batch:
        batch.drop_column("matched_by")
        batch.drop_column("hotel_id")
