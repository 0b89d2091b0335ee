"""Write and read the profile tables (``tables``) in the warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from crm_analytics.profiles.tables import MODEL, PROFILES, REBUILT, TABLES
from crm_analytics.warehouse import Warehouse, migrations

_IDS_PER_STATEMENT = 500


def latest_build_time(warehouse: Warehouse) -> datetime | None:
    """When the latest profile build stamped its customers (``built_at``); None before any build."""
    if not warehouse.has_table(PROFILES):
        return None
    value = warehouse.fetch(f'SELECT MAX(built_at) AS at FROM "{PROFILES}"')["at"][0]
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def replace_profile_tables(
    warehouse: Warehouse, frames: dict[str, pd.DataFrame], customers: Sequence[str] | None = None
) -> None:
    """Write a build in one transaction: readers see the old build or the new one, never a mix.

    ``customers=None`` (a full build) replaces every row of the rebuilt tables and the linkage model;
    a list (an incremental build) replaces only those customers' rows. ``frames[MERGES]`` is appended:
    the merge history is never replaced."""
    unknown = set(frames) - set(TABLES)
    if unknown:
        raise ValueError(f"frames: unknown profile tables {sorted(unknown)}")
    migrations.upgrade(warehouse)
    with warehouse.transaction() as execute:
        for table in (*REBUILT, MODEL):
            if customers is None:
                execute(f'DELETE FROM "{table}"')
            elif table != MODEL:
                for start in range(0, len(customers), _IDS_PER_STATEMENT):
                    chunk = list(customers[start : start + _IDS_PER_STATEMENT])
                    marks = ", ".join(["?"] * len(chunk))
                    execute(f'DELETE FROM "{table}" WHERE "customer_id" IN ({marks})', chunk)
        for table, frame in frames.items():
            if len(frame):
                columns = list(TABLES[table][0])
                warehouse.load_frame(table, frame.reindex(columns=columns))  # same transaction


def read_table(warehouse: Warehouse, table: str, **equals: str) -> pd.DataFrame:
    """Rows of a profile table (empty when profiles were never built), filtered by column equality."""
    if not warehouse.has_table(table):
        return pd.DataFrame(columns=list(TABLES[table][0]))
    expr = warehouse.ibis.table(table)
    for column, value in equals.items():
        expr = expr.filter(expr[column] == value)
    return expr.execute()
