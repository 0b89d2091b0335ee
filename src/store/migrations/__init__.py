"""Alembic migrations of the serving store, configured in code (no ``alembic.ini``).

``upgrade(engine)`` brings a store to ``head`` under a lock, so processes starting together (``crm``
commands, API workers' operators) do not race: on PostgreSQL a transaction-level advisory lock held
by the transaction Alembic migrates in (the DDL commits with the version row); on SQLite an exclusive
``flock`` on ``<database>.migrate-lock`` beside the file (SQLite's own locks cannot span DDL and
version bookkeeping). Revision 0001 is release 0.1.0's schema and creates only the tables a store
lacks, so a store made by 0.1.0 (no ``alembic_version``) is adopted with its rows.
A schema change is a new file in ``versions/``: edit ``tables``, then, on a store at head,
``command.revision(config(conn), message=..., rev_id="0002", autogenerate=True)``; review it (SQLite
gets batch operations) and ``tests/store/test_migrations.py`` checks the result matches ``tables``.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

_FOLDER = Path(__file__).parent
_ADVISORY_LOCK = 7_262_017  # any constant shared by every crm process (the warehouse's is 7_262_016)


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package; ``env.py`` migrates on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_FOLDER).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision in ``versions/``."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The store's revision (None for an empty store or one made by release 0.1.0)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def problem(engine: Engine) -> str | None:
    """None when the store is at head, else why not and what to run."""
    found, newest = current(engine), head()
    if found == newest:
        return None
    return (
        f"the serving store's schema is at {found or 'nothing'}, not {newest}: "
        "run `crm score` (or `crm keys list`: commands that open the store upgrade it)"
    )


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to ``head``; a no-op when it is there, safe to run concurrently."""
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        command.upgrade(config(conn), "head")


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on a file beside a SQLite database (never the database file itself: closing
    another descriptor of it would drop SQLite's own locks); nothing for other databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
