"""Alembic's environment: migrate on the connection ``store.migrations.upgrade`` passes in (online
only); batch mode on SQLite, whose ALTER TABLE cannot change or drop columns in place."""

from __future__ import annotations

from alembic import context

from crm_analytics.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the serving store's migrations through crm_analytics.store.migrations.upgrade")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
