"""The decision log on a SQLite store, written by the answering event loop itself.

Each ``/v1/offers`` answer is one short transaction on a connection of the worker's own, before the
answer leaves: about 0.07 ms, against 0.4 ms through SQLAlchemy plus two thread hand-offs for the
group-commit writer (``store.decision_log.DecisionWriter``, which PostgreSQL keeps). On the 2-core
machine the writer thread's hand-offs and its GIL waits, not the disk, were most of what logging cost
an answer (``benchmarks/serving_throughput.py``; numbers in the benchmarks page).

- **Turns between workers.** SQLite has one write lock per database, and its busy handler sleeps 1, 2,
  5, 10... ms between tries: two workers committing side by side waited up to a second for each other.
  The workers take turns on a file lock beside the database (``serving.db.lock``), which the kernel
  hands to the next waiter at once; a turn is one attempt that never waits on SQLite.
- **Someone else writing.** When another writer holds SQLite's lock (``crm score`` staging a chunk, an
  erasure), the attempt fails at once and the answer tries again every 2 ms, the event loop serving
  other requests in between, until ``CRM_SERVING_STORE_LOCK_WAIT_MS`` after it began (then 503).
- **Durability.** ``synchronous=NORMAL`` in WAL mode: a committed answer survives the process being
  killed (the issue's bar: "durable against a process crash"), but the WAL is not fsynced per commit,
  so a power cut or an operating-system crash can lose the answers since the last checkpoint; feedback
  naming them is then refused as an unknown decision (nothing false is learnt). A thread checkpoints
  the WAL into the database every second (``PASSIVE``, fsyncing both), which bounds that loss to about
  a second unless a long reader (``crm score``, an export) holds the WAL back meanwhile. The log's own
  commits never checkpoint (measured: a checkpoint inside an answer took 11 ms at p99.9).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from crm_analytics.store.decision_log import Decision
from crm_analytics.store.tables import decisions
from crm_analytics.warehouse.private_files import open_private

log = logging.getLogger("crm_analytics.store")
RETRY_SECONDS = 0.002  # between attempts while another writer holds SQLite's lock
BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)  # primary codes (an extended code's low byte)


def suits(engine: Engine) -> bool:
    """Whether ``engine`` is a SQLite database in a file (the log needs its path)."""
    database = engine.url.database
    return engine.dialect.name == "sqlite" and bool(database) and database != ":memory:"


class SqliteDecisionLog:
    """``await record(decision)`` returns once the decision is committed (or raises ``sqlite3.Error``
    when it could not be written within ``lock_wait_ms`` of the call). ``close`` stops the checkpoints."""

    def __init__(self, engine: Engine, lock_wait_ms: int, checkpoint_seconds: float = 1.0) -> None:
        if not suits(engine):
            raise ValueError("the SQLite decision log needs a SQLite store in a file")
        path = Path(str(engine.url.database))
        self.lock_wait_seconds = lock_wait_ms / 1000
        self._connection = _connect(path, "PRAGMA wal_autocheckpoint=0")
        self._turns = open_private(path.with_name(path.name + ".lock"), os.O_RDWR)
        self._guard = threading.Lock()  # the loop writes; close() may come from another thread
        self._closed = False
        names = [column.name for column in decisions.c]
        self._insert = (
            f"INSERT INTO {decisions.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        )
        dialect = engine.dialect  # the values as SQLAlchemy stores them (its DateTime text, for one)
        self._columns = [
            (column.name, column.type.dialect_impl(dialect).bind_processor(dialect)) for column in decisions.c
        ]
        self._checkpoints = _Checkpointer(path, checkpoint_seconds)

    async def record(self, decision: Decision) -> None:
        values = self._values(decision)
        deadline = time.monotonic() + self.lock_wait_seconds
        while not self._try_write(values):
            if time.monotonic() > deadline:
                log.error("decision log: the store stayed locked for %.1f s", self.lock_wait_seconds)
                raise sqlite3.OperationalError("database is locked")
            await asyncio.sleep(RETRY_SECONDS)

    def close(self) -> None:
        self._checkpoints.stop()
        with self._guard:
            self._closed = True
            self._connection.close()
            os.close(self._turns)

    def _values(self, decision: Decision) -> tuple[Any, ...]:
        row = decision.row()
        return tuple(row[name] if convert is None else convert(row[name]) for name, convert in self._columns)

    def _try_write(self, values: tuple[Any, ...]) -> bool:
        """One attempt in this worker's turn: False when another writer holds SQLite's lock."""
        with self._guard:
            if self._closed:
                raise sqlite3.OperationalError("the decision log is closed")
            try:
                with _turn(self._turns):
                    return self._insert_now(values)
            except OSError as exc:  # the lock file: as unwritable as the store itself
                raise sqlite3.OperationalError(f"decision log turn: {exc.strerror}") from None

    def _insert_now(self, values: tuple[Any, ...]) -> bool:
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in BUSY:
                return False
            raise
        try:
            self._connection.execute(self._insert, values)
            self._connection.execute("COMMIT")
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        return True


@contextlib.contextmanager
def _turn(descriptor: int) -> Iterator[None]:
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


def _connect(path: Path, *pragmas: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=0", "PRAGMA synchronous=NORMAL", *pragmas):
        connection.execute(pragma)
    return connection


class _Checkpointer:
    """A daemon thread copying the WAL into the database every ``seconds`` (``PASSIVE``: it waits for
    nobody and nobody waits for it)."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.path = path
        self.seconds = seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-log-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            connection = _connect(self.path)
        except sqlite3.Error as exc:  # the WAL then grows until a store connection checkpoints it
            log.error("decision log: no checkpoints in this worker (%s)", type(exc).__name__)
            return
        try:
            while not self._stopped.wait(self.seconds):
                self.checkpoint(connection)
            self.checkpoint(connection)
        finally:
            connection.close()

    @staticmethod
    def checkpoint(connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the next one tries again; the WAL keeps everything meanwhile
            log.warning("decision log: checkpoint failed (%s)", type(exc).__name__)
