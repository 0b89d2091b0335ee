"""Staging tables: where ingest (``_stage_<batch>``, ``_stage_<batch>_q``) and scoring
(``_stage_scores_<run>``) collect a run's rows before merging them in one transaction.

A job that finishes drops its own; a job that is killed (SIGKILL, power loss) leaves them behind, raw
rows and scores of real people included. ``drop_staging_tables`` removes every one of them: ingest and
scoring call it when they start, and ``crm erase`` calls it so an erased person's rows cannot survive
in a killed run's leftovers. Dropping all of them is safe because the warehouse has one writer at a time
(DuckDB's file lock, the PostgreSQL writer lock of ``warehouse.writer_lock``) and a writer runs its jobs
one after another, so no other run can be using a staging table meanwhile.
"""

from __future__ import annotations

from crm_analytics.warehouse.connection import Warehouse

STAGE_PREFIX = "_stage_"
_STAGE_LIKE = r"\_stage\_%"  # LIKE pattern of the prefix: "_" escaped, it matches any character


def staging_tables(warehouse: Warehouse) -> list[str]:
    """The staging tables in the warehouse's current schema, by name."""
    found = warehouse.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_catalog = current_database() "
        f"AND table_name LIKE '{_STAGE_LIKE}' ESCAPE '\\' "
        "ORDER BY table_name"
    )
    return [str(name) for name in found["table_name"]]


def drop_staging_tables(warehouse: Warehouse) -> list[str]:
    """Drop every staging table (a killed run's leftovers: no run is using them, see the module);
    returns the names dropped."""
    dropped = staging_tables(warehouse)
    for table in dropped:
        warehouse.drop_table(table)
    return dropped
