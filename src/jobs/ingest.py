"""Ingest raw files or a SQL query's result into the warehouse, batch by batch; and what it holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crm_analytics.errors import InvalidInputError
from crm_analytics.ingest.pipeline import BatchRefusedError, OnRows, ingest_file, ingest_query
from crm_analytics.ingest.readers import expand_paths
from crm_analytics.ingest.summary import warehouse_summary
from crm_analytics.ingest.validate import ContractError
from crm_analytics.jobs.common import Progress, no_progress, open_reader, open_warehouse
from crm_analytics.settings import Settings
from crm_analytics.warehouse import Warehouse
from crm_analytics.warehouse.read_copy import read_copy_info

COUNTS = ("rows_read", "rows_new", "rows_duplicate", "rows_rejected", "rows_suppressed")


@dataclass(frozen=True)
class IngestReport:
    """One report per batch (accepted, refused or error) and the accepted rows' totals per table."""

    batches: list[dict[str, Any]]
    totals: dict[str, dict[str, int]]

    @property
    def accepted(self) -> bool:
        return all(b["status"] == "accepted" for b in self.batches)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest(
    settings: Settings,
    paths: list[Path] | None = None,
    *,
    source: str | None = None,
    table: str | None = None,
    sql: str | None = None,
    db_url: str | None = None,
    progress: Progress = no_progress,
) -> IngestReport:
    """Validate and load files or folders (and/or a SQL query's result); bad rows go to quarantine.

    A refused batch or a file that breaks its contract is reported, not raised: the other batches
    still load. Bad arguments are an InvalidInputError."""
    paths = paths or []
    if bool(sql) != bool(db_url) or (sql and not table):
        raise InvalidInputError("--sql needs --db-url and --table")
    if not sql and not paths:
        raise InvalidInputError("give files or folders to ingest, or --sql with --db-url and --table")
    try:
        files = expand_paths(paths)
    except FileNotFoundError as exc:
        raise InvalidInputError(str(exc)) from None
    with open_warehouse(settings) as warehouse:
        jobs: list[tuple[str, Callable[[OnRows], Any]]] = [
            (str(f), _file_job(warehouse, f, settings, table, source)) for f in files
        ]
        if sql and db_url and table:
            query = _query_job(warehouse, db_url, sql, settings, table, source)
            jobs.append(("sql query", query))
        return _run_jobs(jobs, progress)


def ingest_files(
    warehouse: Warehouse, settings: Settings, files: list[Path], progress: Progress = no_progress
) -> IngestReport:
    """Ingest files (tables and sources inferred from their names) into an open warehouse."""
    return _run_jobs([(str(f), _file_job(warehouse, f, settings, None, None)) for f in files], progress)


def _run_jobs(jobs: list[tuple[str, Callable[[OnRows], Any]]], progress: Progress) -> IngestReport:
    """Run batch jobs in order; a refused batch or a broken contract is reported, not raised."""
    batches: list[dict[str, Any]] = []
    for label, job in jobs:
        done = 0

        def on_rows(rows: int, label: str = label) -> None:
            nonlocal done
            done += rows
            progress(f"ingesting {Path(label).name}", done, None)

        try:
            batches.append(job(on_rows).as_dict())
        except BatchRefusedError as exc:
            batches.append(exc.report.as_dict())
        except (ContractError, ValueError) as exc:
            batches.append({"source_file": label, "status": "error", "message": str(exc)})
    return IngestReport(batches, _totals(batches))


def _file_job(
    warehouse: Warehouse, path: Path, settings: Settings, table: str | None, source: str | None
) -> Callable[[OnRows], Any]:
    return lambda on_rows: ingest_file(warehouse, path, settings, table=table, source=source, on_rows=on_rows)


def _query_job(
    warehouse: Warehouse, db_url: str, sql: str, settings: Settings, table: str, source: str | None
) -> Callable[[OnRows], Any]:
    return lambda on_rows: ingest_query(
        warehouse, db_url, sql, settings, table=table, source=source, on_rows=on_rows
    )


def _totals(batches: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for batch in batches:
        if batch["status"] != "accepted":
            continue
        table_totals = totals.setdefault(batch["table"], dict.fromkeys(COUNTS, 0))
        for key in COUNTS:
            table_totals[key] += int(batch.get(key, 0))
    return totals


def summary(settings: Settings) -> dict[str, Any]:
    """Row counts, the transactions at a glance, and quarantine reasons, in the published copy (when
    it was published and the data's last day then; None on PostgreSQL, read directly)."""
    with open_reader(settings) as warehouse:
        return warehouse_summary(warehouse) | {"read_copy": read_copy_info(warehouse)}
