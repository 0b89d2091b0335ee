"""One writer at a time on a PostgreSQL warehouse, as DuckDB's file lock gives a DuckDB one.

PostgreSQL itself takes many writers, but two refreshes (the schedule and the sensor, a ``crm promote``
rescore and a refresh), or an erasure and a refresh, would interleave their replace-whole-table steps,
and a refresh's snapshot could put back a person erased meanwhile. Every job that writes the warehouse
therefore holds a session-level advisory lock on a connection of its own while it works; a second
writer waits up to ``CRM_WAREHOUSE_LOCK_TIMEOUT`` and then gets a ``BusyError`` naming the holder's
backend PID and application. Readers (``open_reader``: notebooks, the reading commands) take no lock.
Re-entrant within a thread, so a job that opens the warehouse inside another's hold does not wait on
itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from crm_analytics.errors import BusyError

WRITER_LOCK = 7_262_017  # the migrations' lock is 7_262_016; any constant shared by every crm process
_local = threading.local()  # per thread: url -> how many times this thread holds the lock
_FIRST_DELAY, _MAX_DELAY = 0.05, 1.0


@contextmanager
def writer_lock(url: str, timeout: float, application: str = "crm") -> Iterator[None]:
    """Hold the warehouse's writer lock on ``url`` (a postgresql:// URL) for the block."""
    held: dict[str, int] = _local.__dict__.setdefault("held", {})
    if held.get(url, 0) > 0:
        held[url] += 1
        try:
            yield
        finally:
            held[url] -= 1
        return
    with psycopg.connect(url, autocommit=True, application_name=application) as conn:
        _acquire(conn, timeout)
        held[url] = 1
        try:
            yield
        finally:
            held.pop(url, None)
            conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))


def _acquire(conn: psycopg.Connection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = _FIRST_DELAY
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()
        if row and row[0]:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BusyError(_busy_message(conn, timeout))
        time.sleep(min(delay, remaining))
        delay = min(2 * delay, _MAX_DELAY)


def _busy_message(conn: psycopg.Connection, waited: float) -> str:
    """One line naming the backend that holds the lock (PID and application name only)."""
    row = conn.execute(
        "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1",
        (WRITER_LOCK,),
    ).fetchone()
    holder = f" (backend PID {row[0]}: {row[1] or 'unnamed'})" if row else ""
    return (
        f"warehouse: another writer holds the PostgreSQL warehouse{holder}; waited {waited:g} s "
        "(CRM_WAREHOUSE_LOCK_TIMEOUT). Try again when it has finished; readers are never blocked"
    )
