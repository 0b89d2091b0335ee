"""A booking's guest row on a SQLite store, read on a plain ``sqlite3`` connection of the reading thread.

``/v1/offers`` reads one guest row per answer (``records.BOOKING_GUEST``: the row, its snapshot's day and
versions, the offers shown since the contact window began). Through SQLAlchemy's connection pool,
execution context and result rows that took 74 us; the same compiled statement on a plain connection
13 us (2,000-guest store, 2026-12-08, on a busy machine: the ratio is what counts). An answer costs 1-2 ms
of CPU in all (with the machine's speed), so this is a few per cent of it. PostgreSQL keeps SQLAlchemy
(its round trip dominates). The row comes back as SQLite stores it: every selected column is text or a
number, for which SQLAlchemy converts nothing (checked when the reader is made).

Each thread has its own connection (``sqlite3`` connections belong to the thread that made them), in
autocommit mode: every read is its own transaction and sees the snapshot active at that moment.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from crm_analytics.store.records import BOOKING_GUEST


class SqliteGuestReader:
    """``row(customer_id, since)``: ``BOOKING_GUEST``'s row as a dict by column name, or None."""

    def __init__(self, engine: Engine, lock_wait_ms: int) -> None:
        dialect = engine.dialect
        compiled = BOOKING_GUEST.compile(dialect=dialect)
        self.path = Path(str(engine.url.database))
        self.lock_wait_ms = lock_wait_ms
        self._sql = compiled.string
        self._columns = [column.name for column in BOOKING_GUEST.selected_columns]
        converted = [
            column.name
            for column in BOOKING_GUEST.selected_columns
            if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None
        ]
        if converted:  # e.g. a DateTime column added to the statement: read it through SQLAlchemy
            raise TypeError(f"BOOKING_GUEST: SQLAlchemy converts {', '.join(converted)}; read it as it does")
        # each ? in order: its bound parameter's name, fixed value and conversion (SQLAlchemy's own
        # DateTime text for ``since``, so the comparison matches what it stored)
        self._parameters: list[tuple[str, Any, Callable[[Any], Any] | None]] = [
            (name, compiled.params[name], bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or []
            for bind in [compiled.binds[name]]
        ]
        self._local = threading.local()

    def row(self, customer_id: str, since: Any) -> dict[str, Any] | None:
        given = {"customer_id": customer_id, "since": since}
        values = []
        for name, fixed, convert in self._parameters:
            value = given.get(name, fixed)
            values.append(convert(value) if convert is not None else value)
        found = self.connection().execute(self._sql, values).fetchone()
        return dict(zip(self._columns, found, strict=True)) if found is not None else None

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # mode=rw: never creates the file (the store made it, private); fails if it is gone
            connection = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None)
            connection.execute(f"PRAGMA busy_timeout={int(self.lock_wait_ms)}")
            connection.execute("PRAGMA query_only=1")
            self._local.connection = connection
        return connection
