"""The decision log: ``serving_decisions`` (every ``/v1/offers`` answer, committed before it is sent);
feedback loses the caller's ``propensity`` (the offer log takes it from the decision log instead).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "serving_decisions",
        sa.Column("decision_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(128)),
        sa.Column("decided_at", sa.DateTime, nullable=False),
        sa.Column("offers", sa.Text, nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
    )
    op.create_index("serving_decisions_customer", "serving_decisions", ["customer_id"])
    with op.batch_alter_table("serving_feedback") as batch:
        batch.drop_column("propensity")  # the caller's word: never trusted again, so not kept


def downgrade() -> None:
    with op.batch_alter_table("serving_feedback") as batch:
        batch.add_column(sa.Column("propensity", sa.Float))
    op.drop_index("serving_decisions_customer", table_name="serving_decisions")
    op.drop_table("serving_decisions")
