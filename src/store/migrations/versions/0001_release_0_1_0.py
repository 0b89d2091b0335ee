"""Release 0.1.0's schema: snapshots, customers, segment members, contacts, feedback, lookup records,
linkage models and API keys.

Creates only the tables a store lacks, so a store made by release 0.1.0 (no ``alembic_version``) is
adopted with its rows; a feedback table from before 0.1.0 gains ``decision_id``, ``propensity`` and its
index, as 0.1.0 itself did on start. Frozen: a later change is a new revision.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_MATCH_COLUMNS = (  # profiles.records.MATCH_COLUMNS as of 0.1.0
    "first_name",
    "last_name",
    "email",
    "phone",
    "loyalty_id",
    "birth_date",
    "street",
    "postcode",
    "city",
)


def _tables() -> list[sa.Table]:
    metadata = sa.MetaData()
    sa.Table(
        "serving_snapshots",
        metadata,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("catalogue", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    sa.Table(
        "serving_customers",
        metadata,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        *(sa.Column(name, sa.Text) for name in ("scores", "segments", "history", "brief", "profile")),
        sa.Column("consent", sa.Boolean, nullable=False),
    )
    sa.Table(
        "serving_segment_members",
        metadata,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("segment", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("clv", sa.Float),
        sa.Column("churn_probability", sa.Float),
        sa.Column("consent", sa.Boolean, nullable=False),
    )
    contacts = sa.Table(
        "serving_contacts",
        metadata,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(256), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
    )
    sa.Index("serving_contacts_lookup", contacts.c.kind, contacts.c.value)
    feedback = sa.Table(
        "serving_feedback",
        metadata,
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("offer_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128)),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("context", sa.Text),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("decision_id", sa.String(128)),
        sa.Column("propensity", sa.Float),
    )
    sa.Index("serving_feedback_shown", feedback.c.customer_id, feedback.c.event, feedback.c.occurred_at)
    sa.Table(
        "serving_lookup_records",
        metadata,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("unique_id", sa.String(300), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        *(sa.Column(name, sa.String(256)) for name in _MATCH_COLUMNS),
    )
    sa.Table(
        "serving_linkage_models",
        metadata,
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
    )
    sa.Table(
        "api_keys",
        metadata,
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    return list(metadata.sorted_tables)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in _tables():
        if table.name not in present:
            table.create(bind)
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in (c for c in table.columns if c.name not in columns):
            if not column.nullable:  # only feedback's nullable columns were ever added later
                raise RuntimeError(f"{table.name}: cannot add the required column {column.name}")
            op.add_column(table.name, sa.Column(column.name, column.type))
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_tables()):
        table.drop(bind, checkfirst=True)
