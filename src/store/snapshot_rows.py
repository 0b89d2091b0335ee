"""Moving a snapshot's rows in bounded transactions: deleting a replaced snapshot's rows, and carrying
unchanged customers' personal rows (brief, profile, contacts, look-up records) forward from the active
snapshot into the one being staged.

Why carry: a daily refresh re-links only the customers whose records changed, yet every snapshot holds
every customer's rows. Building the others' contacts, look-up records, briefs and profiles again from the
warehouse cost ~1.5 s of a 20,000-guest day (benchmarks/refresh_days.py); copying them inside the store
costs a fraction of that. Scores and segments still move for everyone (``T`` grows every day).

On SQLite every statement covers at most ``STAGE_ROWS`` rows (a window of rowids), so an API write
waits for one window, never for the whole copy; PostgreSQL's row locks block no other writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    union,
)
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from crm_analytics.store.tables import contacts, customers, lookup_records

STAGE_ROWS = 5_000  # rows per staging transaction: the longest any API write waits for the store's lock
IDS_PER_READ = 5_000  # ids per IN (...) read; SQLite allows 32,766 parameters a statement
CARRIED_TABLES = (contacts, lookup_records)  # copied whole for the carried customers


@dataclass(frozen=True)
class Carry:
    """Which customers' personal rows a new snapshot copies from ``from_snapshot``: ``customers`` (their
    profile build is the one that snapshot reflects), and the rest of that snapshot's customers with
    personal rows (``dropped``: re-linked, merged away or erased since), whose rows are built again."""

    from_snapshot: str
    customers: frozenset[str]
    dropped: frozenset[str]


def customers_with_profile(engine: Engine, snapshot_id: str) -> set[str]:
    """Ids with a profile in a snapshot."""
    query = select(customers.c.customer_id).where(
        customers.c.snapshot_id == snapshot_id, customers.c.profile.is_not(None)
    )
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def customers_with_personal_rows(engine: Engine, snapshot_id: str) -> set[str]:
    """Ids with a profile, contacts or look-up records in a snapshot."""
    query = union(
        select(customers.c.customer_id).where(
            customers.c.snapshot_id == snapshot_id, customers.c.profile.is_not(None)
        ),
        *(select(t.c.customer_id).where(t.c.snapshot_id == snapshot_id) for t in CARRIED_TABLES),
    )
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def carried_columns(engine: Engine, snapshot_id: str, ids: Iterable[str]) -> dict[str, tuple[Any, Any]]:
    """Customer id -> (brief, profile), as stored (JSON text), for ``ids`` in a snapshot."""
    wanted = list(ids)
    out: dict[str, tuple[Any, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), IDS_PER_READ):
            query = select(customers.c.customer_id, customers.c.brief, customers.c.profile).where(
                customers.c.snapshot_id == snapshot_id,
                customers.c.customer_id.in_(wanted[start : start + IDS_PER_READ]),
            )
            out.update((row.customer_id, (row.brief, row.profile)) for row in conn.execute(query))
    return out


def copy_carried(conn: Connection, carry: Carry, to_snapshot: str) -> int:
    """Copy the carried customers' contacts and look-up records into ``to_snapshot``, one transaction
    per window of rows; returns the rows copied. A look-up record already staged under ``to_snapshot``
    (it moved to a re-linked customer) is not copied again."""
    copied = 0
    for table in CARRIED_TABLES:
        names = [c.name for c in table.c if c.name != "snapshot_id"]
        source = table.alias("source")
        chosen = select(literal(to_snapshot).label("snapshot_id"), *(source.c[n] for n in names))
        if carry.dropped:
            chosen = chosen.where(source.c.customer_id.not_in(sorted(carry.dropped)))
        if table is lookup_records:  # one key look-up per row (a NOT IN list would be read per window)
            staged = select(table.c.unique_id).where(
                table.c.snapshot_id == to_snapshot, table.c.unique_id == source.c.unique_id
            )
            chosen = chosen.where(~staged.exists())
        for window in _windows(conn, source, carry.from_snapshot):
            with conn.begin():
                copy = insert(table).from_select(["snapshot_id", *names], chosen.where(window))
                copied += conn.execute(copy).rowcount or 0
    return copied


def _windows(conn: Connection, source: Any, snapshot_id: str) -> Iterator[ColumnElement[bool]]:
    """Conditions that split a snapshot's rows of ``source`` (an alias named source) into windows: on
    SQLite ``STAGE_ROWS`` rowids each, found by the rowid itself (the unary + keeps SQLite from
    answering the snapshot condition with the key index, which would scan the snapshot per window);
    elsewhere one window (row locks: a long statement blocks no other writer)."""
    if conn.dialect.name != "sqlite":
        yield source.c.snapshot_id == snapshot_id
        return
    rowid: ColumnClause[Any] = literal_column("source.rowid")
    in_snapshot = source.c.snapshot_id == snapshot_id
    low, high = conn.execute(select(func.min(rowid), func.max(rowid)).where(in_snapshot)).one()
    conn.rollback()  # the read's implicit transaction ends before the windows' own
    for start in range(low or 0, (high or -1) + 1, STAGE_ROWS):
        yield and_(
            literal_column("+source.snapshot_id") == snapshot_id,
            rowid.between(start, start + STAGE_ROWS - 1),
        )


def delete_snapshot_rows(conn: Connection, table: Table, snapshot_id: str) -> int:
    """Delete a snapshot's rows of ``table`` (chunked on SQLite); returns the rows deleted."""
    in_snapshot = table.c.snapshot_id == snapshot_id
    if conn.dialect.name != "sqlite":  # row locks: a long delete blocks no other writer
        with conn.begin():
            return conn.execute(delete(table).where(in_snapshot)).rowcount or 0
    rowid: ColumnClause[Any] = literal_column("rowid")
    deleted = 0
    while True:
        batch = select(rowid).select_from(table).where(in_snapshot).limit(STAGE_ROWS).scalar_subquery()
        with conn.begin():
            done = conn.execute(delete(table).where(rowid.in_(batch))).rowcount or 0
        deleted += done
        if done < STAGE_ROWS:
            return deleted


@contextmanager
def staging_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for writing rows no reader sees yet (staged or discarded snapshots); begin its
    transactions explicitly. On SQLite its commits skip the fsync (``synchronous=NORMAL``: in WAL mode
    the file stays consistent, and a power cut loses at most these commits); the switch that follows
    commits with ``FULL``, which syncs the log and so every staged row with it. Staging 175,000 rows
    (a 20,000-guest snapshot) made 133 commits; their fsyncs cost ~0.6 s."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            conn.commit()
        try:
            yield conn
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA synchronous=FULL")  # what the pool's other users expect
                conn.commit()
