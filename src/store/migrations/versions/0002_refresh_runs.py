"""The daily refresh's history: ``refresh_runs`` (one row per ``crm refresh``), read by ``crm status``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "refresh_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("report", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index("refresh_runs_started", "refresh_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("refresh_runs_started", table_name="refresh_runs")
    op.drop_table("refresh_runs")
