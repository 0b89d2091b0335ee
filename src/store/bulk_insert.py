"""Staging a snapshot's rows on SQLite: one compiled INSERT and the driver's ``executemany``.

``connection.execute(insert(table), rows)`` passes every row through SQLAlchemy's parameter handling;
staging 80,000 rows like a snapshot's (20,000 customers, 60,000 segment memberships) took 0.63-0.81 s
that way and 0.41-0.45 s here (about 0.5 s of a 20,000-guest refresh, whose snapshot has ~175,000
rows). The statement is compiled once and the rows go to ``sqlite3`` as tuples, with each column type's
own bind processor applied (booleans, dates). Other databases keep SQLAlchemy's own bulk path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (every row with the same keys, the table's column names) into ``table``."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=names)
    order = compiled.positiontup or []
    processors = [table.c[name].type.bind_processor(conn.dialect) for name in order]
    params = [
        tuple(
            value if process is None else process(value)
            for value, process in zip((row[name] for name in order), processors, strict=True)
        )
        for row in rows
    ]
    conn.exec_driver_sql(compiled.string, params)
