"""After an erasure, a SQLite serving store is rebuilt so deleted rows leave no bytes in its files.

SQLite keeps a deleted row's bytes in free space of its pages and on its free list, and in WAL mode
the pages written since the last checkpoint, old versions included, in ``<store>-wal``. ``compact``
runs ``VACUUM`` (a rebuild of every page from the live rows; ``PRAGMA secure_delete`` would only zero
new deletions, not what the WAL already holds) and then ``PRAGMA wal_checkpoint(TRUNCATE)``, which
copies the rebuilt pages into the database file and truncates the WAL to zero bytes. SQLite builds the
new pages in a temporary file of its own (``temp_store``, usually under /tmp), deleted when done.

Both wait for the store's other users as any write does (``busy_timeout``): API readers hold a
snapshot for milliseconds. A reader that keeps one longer makes the checkpoint give up (reported as
False): the WAL is then emptied by a later checkpoint. A PostgreSQL store is left as it is: a deleted
row stays in its table's pages until ``VACUUM FULL`` rewrites them, an operator's step
(docs/operations.md, Erasure).
"""

from __future__ import annotations

from sqlalchemy import Engine


def compact(engine: Engine) -> bool | None:
    """Rebuild a SQLite store and empty its WAL; True when the WAL was truncated, False when a reader
    kept it busy, None for other databases (nothing done)."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return not busy
