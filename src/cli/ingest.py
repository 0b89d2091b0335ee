"""``crm ingest`` and ``crm warehouse summary|publish``: raw data into the warehouse, what it holds, and
the read-only copy readers open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crm_analytics.cli.common import (
    JsonOption,
    emit,
    err,
    handle_errors,
    out,
    progress_bar,
    render_rows,
    settings,
)

if TYPE_CHECKING:
    from crm_analytics.jobs.ingest import IngestReport
    from crm_analytics.jobs.publish import PublishReport

warehouse_app = typer.Typer(help="Look into the warehouse.", no_args_is_help=True)


@handle_errors
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="CSV/Parquet files or folders of them.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Source system, for files without a source column.")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Target table, when the file name does not tell.")] = None,
    sql: Annotated[
        str | None, typer.Option(help="A SQL query to ingest instead of files (needs --db-url).")
    ] = None,
    db_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the database --sql runs against.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate and load raw data into the warehouse; bad rows go to quarantine with a reason."""
    from crm_analytics.jobs import ingest as ingest_job

    with progress_bar() as progress:
        report = ingest_job.ingest(
            settings(), paths, source=source, table=table, sql=sql, db_url=db_url, progress=progress
        )
    emit(report, as_json, render_ingest)
    if not report.accepted:
        raise typer.Exit(1)


@warehouse_app.command("summary")
@handle_errors
def summary(as_json: JsonOption = False) -> None:
    """Row counts, the transactions at a glance, and quarantine reasons."""
    from crm_analytics.jobs import ingest as ingest_job

    emit(ingest_job.summary(settings()), as_json, render_summary)


@warehouse_app.command("publish")
@handle_errors
def publish(as_json: JsonOption = False) -> None:
    """Publish the read-only copy of a DuckDB warehouse that notebooks and the reading commands open
    (swapped in atomically; nothing to do on PostgreSQL)."""
    from crm_analytics.jobs.publish import publish as publish_job

    emit(publish_job(settings()), as_json, render_publish)


def render_publish(report: PublishReport) -> None:
    if report.path is None:
        out.print(f"{report.backend}: readers read the warehouse itself; nothing to publish")
        return
    out.print(
        f"published {report.path} at {report.published_at} UTC (data up to {report.as_of}) "
        f"in {report.seconds:.2f} s"
    )


def render_ingest(report: IngestReport) -> None:
    rows = [
        {
            "file": Path(b["source_file"]).name,
            "table": b.get("table", "?"),
            "status": b["status"],
            "read": b.get("rows_read", 0),
            "new": b.get("rows_new", 0),
            "duplicate": b.get("rows_duplicate", 0),
            "quarantined": b.get("rows_rejected", 0),
        }
        for b in report.batches
    ]
    render_rows("ingest", rows)
    for batch in report.batches:
        if batch.get("message"):
            err.print(batch["message"], style="yellow", markup=False)


def render_summary(summary: dict[str, Any]) -> None:
    tables = [{"table": t, "rows": n} for t, n in summary["tables"].items()]
    render_rows(f"warehouse ({summary['warehouse']})", tables)
    tx = summary["transactions"]
    out.print(f"{tx['customers']:,} customers from {tx['sources']} source(s), {tx['first']} .. {tx['last']}")
    if tx["by_type"]:
        render_rows("transactions by type", tx["by_type"])
    if summary["quarantine"]:
        render_rows("quarantine", summary["quarantine"])
    if summary.get("read_copy"):
        copy = summary["read_copy"]
        out.print(f"read copy published {copy['published_at']} UTC, data up to {copy['as_of']}")
