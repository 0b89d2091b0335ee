"""Ingest's own tables: the columns of a contract's table, the quarantine and the batch log.

The tables themselves are created by ``warehouse.migrations``; these definitions are what ingest
writes (and what a test holds the migrated schema to).
"""

from __future__ import annotations

import pandera.pandas as pa

from crm_analytics.ingest.contracts import Contract
from crm_analytics.warehouse import sql_type

LINEAGE_COLUMNS = {"ingest_batch_id": "TEXT", "row_hash": "BIGINT"}

QUARANTINE_COLUMNS = {
    "batch_id": "TEXT",
    "table_name": "TEXT",
    "source_file": "TEXT",
    "row_number": "BIGINT",
    "column_name": "TEXT",
    "reason": "TEXT",
    "row_hash": "BIGINT",
    "payload": "TEXT",
    "quarantined_at": "TIMESTAMP",
}
QUARANTINE_KEY = ("table_name", "row_hash", "column_name", "reason")

BATCH_COLUMNS = {
    "batch_id": "TEXT",
    "table_name": "TEXT",
    "source_file": "TEXT",
    "file_sha256": "TEXT",
    "rows_read": "BIGINT",
    "rows_new": "BIGINT",
    "rows_duplicate": "BIGINT",
    "rows_rejected": "BIGINT",
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
}


def contract_columns(contract: Contract) -> dict[str, str]:
    """Column name -> SQL type for a contract's table, lineage columns included."""
    schema: pa.DataFrameSchema = contract.schema
    columns = {name: sql_type(column.dtype) for name, column in schema.columns.items()}
    return columns | LINEAGE_COLUMNS
