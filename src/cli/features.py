"""``crm features build|export|catalog``: purchase-history features as of a cutoff."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    err,
    handle_errors,
    out,
    render_rows,
    settings,
)

app = typer.Typer(help="Build, export and describe purchase-history features.", no_args_is_help=True)


@app.command("build")
@handle_errors
def build(
    as_of: Annotated[date, day_option("Cutoff date; features use data up to this day.")],
    horizon_days: Annotated[
        int | None, typer.Option(min=1, help="Add labels from the N days after the cutoff.")
    ] = None,
    time_unit: Annotated[str, typer.Option(help="days, or weeks (days / 7) for recency and T.")] = "days",
    engine: Annotated[
        str | None, typer.Option(help="duckdb, postgres or spark; default: the warehouse's own backend.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the feature table as of a cutoff and store it in the warehouse (replacing that cutoff)."""
    from crm_analytics.jobs import features

    with err.status(f"building features as of {as_of}"):
        report = features.build(settings(), as_of, horizon_days, time_unit, engine)
    emit(report, as_json, lambda r: render_rows("features", [{k: str(v) for k, v in asdict(r).items()}]))


@app.command("export")
@handle_errors
def export(
    as_of: Annotated[date, day_option("The cutoff of a stored build.")],
    out_file: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    as_json: JsonOption = False,
) -> None:
    """Write a stored feature table to Parquet."""
    from crm_analytics.jobs import features

    report = features.export(settings(), as_of, out_file)
    emit(report, as_json, lambda r: out.print(f"{r.rows:,} rows x {r.columns} cols -> {r.file}"))


@app.command("catalog")
@handle_errors
def catalog(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown catalog here instead of printing it.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every feature with its description, type and source columns."""
    from crm_analytics.features import build  # noqa: F401  (importing the families declares them)
    from crm_analytics.features.catalog import CATALOG, catalog_markdown

    if out_file is not None:
        out_file.write_text(catalog_markdown())
    if as_json:
        emit([asdict(f) for f in CATALOG], True)
    elif out_file is None:
        typer.echo(catalog_markdown())
