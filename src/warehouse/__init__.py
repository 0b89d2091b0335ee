"""The warehouse: one Ibis connection (DuckDB file by default, PostgreSQL by URL) and its schema."""

from crm_analytics.warehouse.connection import (
    Execute,
    IdRange,
    Warehouse,
    create_table_sql,
    id_ranges,
    parse_warehouse_url,
    sql_type,
)
from crm_analytics.warehouse.read_copy import publish_read_copy, read_copy_path

__all__ = [
    "Execute",
    "IdRange",
    "Warehouse",
    "create_table_sql",
    "id_ranges",
    "parse_warehouse_url",
    "publish_read_copy",
    "read_copy_path",
    "sql_type",
]
