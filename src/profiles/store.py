"""Write and read the profile tables (``tables``) in the warehouse."""

from __future__ import annotations

import pandas as pd

from crm_analytics.profiles.tables import TABLES
from crm_analytics.warehouse import Warehouse, migrations


def replace_profile_tables(warehouse: Warehouse, frames: dict[str, pd.DataFrame]) -> None:
    """Replace every profile table's rows with ``frames`` in one transaction: readers see the old build
    or the new one, never a mix."""
    unknown = set(frames) - set(TABLES)
    if unknown:
        raise ValueError(f"frames: unknown profile tables {sorted(unknown)}")
    migrations.upgrade(warehouse)
    with warehouse.transaction() as execute:
        for table, (columns, _) in TABLES.items():
            execute(f'DELETE FROM "{table}"')
            frame = frames.get(table)
            if frame is not None:
                warehouse.load_frame(table, frame.reindex(columns=list(columns)))  # same transaction


def read_table(warehouse: Warehouse, table: str, **equals: str) -> pd.DataFrame:
    """Rows of a profile table (empty when profiles were never built), filtered by column equality."""
    if not warehouse.has_table(table):
        return pd.DataFrame(columns=list(TABLES[table][0]))
    expr = warehouse.ibis.table(table)
    for column, value in equals.items():
        expr = expr.filter(expr[column] == value)
    return expr.execute()
