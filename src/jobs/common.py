"""What every job shares: opening the warehouse (to write, or to read what was published) and the
serving store with their schemas current, and the progress callback a job reports through (the CLI
draws it; notebooks and the scheduler may not)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from crm_analytics.errors import NotReadyError
from crm_analytics.settings import Settings
from crm_analytics.store import ServingStore
from crm_analytics.warehouse import Warehouse, migrations, read_copy_path
from crm_analytics.warehouse.locks import describe_command
from crm_analytics.warehouse.writer_lock import writer_lock


class Progress(Protocol):
    """``progress(stage, done, total)``: what the job is doing now, and how far it is (when it knows)."""

    def __call__(self, stage: str, done: float | None = None, total: float | None = None) -> None: ...


def no_progress(stage: str, done: float | None = None, total: float | None = None) -> None:
    """The default: report nothing."""


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The configured warehouse, read-write, with its schema brought up to date
    (``warehouse.migrations``); a DuckDB file another process holds is waited for up to
    ``CRM_WAREHOUSE_LOCK_TIMEOUT`` seconds, then a BusyError naming that process; on PostgreSQL the
    writer lock (``warehouse.writer_lock``) gives the same one-writer rule."""
    with contextlib.ExitStack() as stack:
        if settings.warehouse_url.startswith("postgresql"):  # DuckDB's file lock does this for a file
            stack.enter_context(writer_lock(settings.warehouse_url, settings.warehouse_lock_timeout, _me()))
        warehouse = stack.enter_context(
            Warehouse(settings.warehouse_url, lock_timeout=settings.warehouse_lock_timeout)
        )
        migrations.upgrade(warehouse)
        yield warehouse


def _me() -> str:
    """This process as the holder of a lock is named: program and subcommand words only."""
    if not sys.argv or sys.argv[0] in ("", "-c"):  # an interactive or `python -c` interpreter
        return "python"
    return describe_command(sys.argv)


def open_reader(settings: Settings) -> Warehouse:
    """The warehouse for reading, as notebooks and the reading commands open it (close it, or use it
    in a ``with``): on DuckDB the published read-only copy (``crm warehouse publish``, ``crm run`` and
    the refresh publish it), which any number of processes read while one writes the warehouse; on
    PostgreSQL the warehouse itself (MVCC: readers and writers at once). Runs no DDL; a NotReadyError
    when nothing is published yet or its schema is older than this release's."""
    path = read_copy_path(settings)
    if path is None:
        if settings.warehouse_url.startswith("duckdb"):
            raise NotReadyError(
                "warehouse: an in-memory DuckDB warehouse exists only inside one process; "
                "readers need a DuckDB file or PostgreSQL (CRM_WAREHOUSE_URL)"
            )
        reader = Warehouse(settings.warehouse_url)
        remedy = "run a command that writes it (crm ingest, crm run) first"
    elif not path.is_file():
        raise NotReadyError(
            f"warehouse: no read copy published yet at {path}; run `crm warehouse publish` "
            "(`crm run` and the daily refresh publish it too)"
        )
    else:
        reader = Warehouse(f"duckdb:///{path}", read_only=True, lock_timeout=settings.warehouse_lock_timeout)
        remedy = "run `crm warehouse publish`"
    found = migrations.current_version(reader)
    if found < migrations.HEAD:
        reader.close()
        raise NotReadyError(
            f"warehouse: schema version {found} is older than this release's {migrations.HEAD}; {remedy}"
        )
    return reader


def open_store(settings: Settings) -> ServingStore:
    """The configured serving store, its schema brought up to date (``store.migrations``)."""
    return ServingStore(
        settings.serving_store_url, lock_wait_ms=settings.serving_store_lock_wait_ms
    ).upgrade()
