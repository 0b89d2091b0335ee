"""Columns and indexes a store made by an older version lacks, added in place (until Alembic manages the
store's schema)."""

from __future__ import annotations

from sqlalchemy import Engine, Table, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError


def upgrade_table(engine: Engine, table: Table) -> None:
    """Bring a store created by an older version up to date: add the table's missing (nullable)
    columns, so feedback already stored is kept, and its missing indexes. Workers starting together
    may race to do it; the loser finds the work done."""
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    for column in (c for c in table.columns if c.name not in present):
        if not column.nullable:
            raise RuntimeError(f"{table.name}: cannot add the required column {column.name}")
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
        except (OperationalError, ProgrammingError):  # another worker added it first
            if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                raise
    indexes = {i["name"] for i in inspect(engine).get_indexes(table.name)}
    for index in (i for i in table.indexes if i.name not in indexes):
        try:
            with engine.begin() as conn:
                index.create(conn)
        except (OperationalError, ProgrammingError):
            if index.name not in {i["name"] for i in inspect(engine).get_indexes(table.name)}:
                raise
